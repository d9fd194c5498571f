package sns

import "testing"

func TestFilterPolicies(t *testing.T) {
	str := func(v string) messageAttributeValue { return messageAttributeValue{DataType: "String", StringValue: v} }
	num := func(v string) messageAttributeValue { return messageAttributeValue{DataType: "Number", StringValue: v} }
	attrs := map[string]messageAttributeValue{
		"store":    str("example_corp"),
		"event":    str("order_placed"),
		"price":    num("210.75"),
		"colors":   {DataType: "String.Array", StringValue: `["red","green"]`},
		"ip":       str("10.0.0.42"),
		"customer": str("Acme"),
		"blob":     {DataType: "Binary", BinaryValue: []byte("x")},
	}
	body := `{"order":{"kind":"book","qty":3},"region":"eu-west-1"}`
	m := &message{body: body, attributes: attrs}
	for _, c := range []struct {
		policy, scope string
		want          bool
	}{
		{`{"store":["example_corp"]}`, "", true},
		{`{"store":["other"]}`, "", false},
		{`{"store":["example_corp"],"event":["order_cancelled"]}`, "", false},
		{`{"event":[{"prefix":"order_"}]}`, "", true},
		{`{"event":[{"suffix":"_placed"}]}`, "", true},
		{`{"customer":[{"equals-ignore-case":"ACME"}]}`, "", true},
		{`{"event":[{"anything-but":["order_placed"]}]}`, "", false},
		{`{"event":[{"anything-but":{"prefix":"refund"}}]}`, "", true},
		{`{"price":[{"numeric":[">",100,"<=",300]}]}`, "", true},
		{`{"price":[{"numeric":["<",100]}]}`, "", false},
		{`{"price":[210.75]}`, "", true},
		{`{"colors":["green"]}`, "", true},
		{`{"colors":["blue"]}`, "", false},
		{`{"missing":[{"exists":false}]}`, "", true},
		{`{"store":[{"exists":false}]}`, "", false},
		{`{"ip":[{"cidr":"10.0.0.0/24"}]}`, "", true},
		{`{"blob":["x"]}`, "", false},
		{`{"$or":[{"store":["nope"]},{"event":["order_placed"]}]}`, "", true},
		{`{"order":{"kind":["book"]}}`, "MessageBody", true},
		{`{"order":{"qty":[{"numeric":[">=",5]}]}}`, "MessageBody", false},
		{`{"region":[{"prefix":"eu-"}]}`, "MessageBody", true},
	} {
		attrs := map[string]string{"FilterPolicy": c.policy}
		if c.scope != "" {
			attrs["FilterPolicyScope"] = c.scope
		}
		f, err := compileFilter(attrs)
		if err != nil {
			t.Fatalf("%s: %v", c.policy, err)
		}
		if got := f.match(m); got != c.want {
			t.Errorf("%s (%s) matched %v, want %v", c.policy, c.scope, got, c.want)
		}
	}
	// A body policy does not match a body that is not JSON.
	f, _ := compileFilter(map[string]string{"FilterPolicy": `{"a":["b"]}`, "FilterPolicyScope": "MessageBody"})
	if f.match(&message{body: "plain text"}) {
		t.Error("a body policy matched a body that is not JSON")
	}
	for _, bad := range []map[string]string{
		{"FilterPolicy": `{"order":{"kind":["book"]}}`},                                   // nested in attribute scope
		{"FilterPolicy": `{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"],"f":["1"]}`}, // six keys
		{"FilterPolicy": `["not an object"]`},
	} {
		if err := checkFilter(bad); err == nil {
			t.Errorf("%s was accepted", bad["FilterPolicy"])
		}
	}
}
