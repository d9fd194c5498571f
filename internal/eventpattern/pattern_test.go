package eventpattern

import "testing"

func TestMatch(t *testing.T) {
	event := `{"body":{"kind":"order","total":42.5,"tags":["a","vip"],"ip":"10.0.0.7","path":"/a/b/c"},
		"attributes":{"ApproximateReceiveCount":"1"},"messageAttributes":{}}`
	for _, tc := range []struct {
		pattern string
		want    bool
	}{
		{`{"body":{"kind":["order"]}}`, true},
		{`{"body":{"kind":["refund"]}}`, false},
		{`{"body":{"total":[42.50]}}`, true},
		{`{"body":{"tags":["vip"]}}`, true},
		{`{"body":{"kind":[{"prefix":"ord"}]}}`, true},
		{`{"body":{"kind":[{"suffix":"DER"}]}}`, false},
		{`{"body":{"kind":[{"suffix":{"equals-ignore-case":"DER"}}]}}`, true},
		{`{"body":{"kind":[{"equals-ignore-case":"ORDER"}]}}`, true},
		{`{"body":{"kind":[{"anything-but":["order","x"]}]}}`, false},
		{`{"body":{"kind":[{"anything-but":{"prefix":"ref"}}]}}`, true},
		{`{"body":{"total":[{"numeric":[">",40,"<=",42.5]}]}}`, true},
		{`{"body":{"total":[{"numeric":["<",10]}]}}`, false},
		{`{"body":{"missing":[{"exists":false}]}}`, true},
		{`{"body":{"kind":[{"exists":true}]}}`, true},
		{`{"body":{"kind":[{"exists":false}]}}`, false},
		{`{"body":{"path":[{"wildcard":"/a/*"}]}}`, true},
		{`{"body":{"path":[{"wildcard":"/x*"}]}}`, false},
		{`{"body":{"ip":[{"cidr":"10.0.0.0/24"}]}}`, true},
		{`{"body":{"$or":[{"kind":["refund"]},{"total":[{"numeric":[">",1]}]}]}}`, true},
		{`{"body":{"$or":[{"kind":["refund"]},{"total":[{"numeric":[">",100]}]}]}}`, false},
		{`{"body":{"kind":["order"]},"attributes":{"ApproximateReceiveCount":["2"]}}`, false},
	} {
		p, err := Compile(tc.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tc.pattern, err)
		}
		ev, _ := Decode([]byte(event))
		if got := p.Match(ev); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.pattern, got, tc.want)
		}
	}
}

func TestCompileRejects(t *testing.T) {
	for _, p := range []string{`[]`, `{"a":"b"}`, `{"a":[]}`, `{"a":[{"numeric":["!",1]}]}`, `{"a":[{"nope":1}]}`, `{"$or":[{"a":["b"]}]}`, `{}`} {
		if _, err := Compile(p); err == nil {
			t.Errorf("%s compiled", p)
		}
	}
}
