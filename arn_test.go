package lamina

import (
	"strings"
	"testing"
)

func TestParseFunctionRef(t *testing.T) {
	for _, tc := range []struct {
		in                               string
		name, qualifier, region, account string
		bad                              bool
	}{
		{in: "fn", name: "fn"},
		{in: "fn:live", name: "fn", qualifier: "live"},
		{in: "fn:$LATEST", name: "fn", qualifier: "$LATEST"},
		{in: "123456789012:function:fn", name: "fn", account: "123456789012"},
		{in: "123456789012:function:fn:7", name: "fn", qualifier: "7", account: "123456789012"},
		{in: "arn:aws:lambda:us-east-1:123456789012:function:my-fn_2", name: "my-fn_2", region: "us-east-1", account: "123456789012"},
		{in: "arn:aws:lambda:eu-west-3:123456789012:function:fn:prod", name: "fn", qualifier: "prod", region: "eu-west-3", account: "123456789012"},
		{in: "bad name", bad: true},
		{in: "", bad: true},
		{in: "fn:a:b", bad: true},
		{in: "arn:aws:s3:::bucket", bad: true},
	} {
		ref, err := ParseFunctionRef(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: accepted as %+v", tc.in, ref)
			}
			continue
		}
		want := FunctionRef{Name: tc.name, Qualifier: tc.qualifier, Region: tc.region, AccountID: tc.account}
		if err != nil || ref != want {
			t.Errorf("%q: %+v, %v; want %+v", tc.in, ref, err, want)
		}
	}
	if _, err := ParseFunctionRef(strings.Repeat("f", 65)); err == nil {
		t.Error("a 65-character name was accepted")
	}
}

func TestAliasPick(t *testing.T) {
	a := &AliasConfiguration{FunctionVersion: "1", RoutingConfig: &AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.25}}}
	for _, tc := range []struct {
		r    float64
		want string
	}{{0, "2"}, {0.2499, "2"}, {0.25, "1"}, {0.99, "1"}} {
		if got := a.Pick(tc.r); got != tc.want {
			t.Errorf("Pick(%v) = %s, want %s", tc.r, got, tc.want)
		}
	}
	if got := (&AliasConfiguration{FunctionVersion: "3"}).Pick(0); got != "3" {
		t.Errorf("an alias without routing picked %s", got)
	}
}
