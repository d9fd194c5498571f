package worker

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestDiscoverExtensions(t *testing.T) {
	layer := func(files map[string]os.FileMode) string {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "extensions", "subdir"), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, mode := range files {
			if err := os.WriteFile(filepath.Join(dir, "extensions", name), nil, mode); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	first := layer(map[string]os.FileMode{"b": 0o755, "data.json": 0o644})
	second := layer(map[string]os.FileMode{"a": 0o755, "b": 0o755})
	names, err := discoverExtensions([]string{first, second, t.TempDir()})
	if err != nil || !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("discoverExtensions = %q, %v; want [a b]", names, err)
	}

	many := map[string]os.FileMode{}
	for i := range maxExtensions + 1 {
		many["ext"+strconv.Itoa(i)] = 0o755
	}
	if _, err := discoverExtensions([]string{layer(many)}); err == nil || !strings.Contains(err.Error(), "at most 10") {
		t.Errorf("11 extensions: %v", err)
	}
}

func TestSubscriptionValidation(t *testing.T) {
	env := &environment{}
	for body, wantOK := range map[string]bool{
		`{"types":["platform"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:4243/t"}}`:                                                                         true,
		`{"types":["platform","function","extension"],"buffering":{"maxItems":1000,"maxBytes":262144,"timeoutMs":25},"destination":{"protocol":"HTTP","URI":"http://127.0.0.1:80"}}`: true,
		`{"types":["bogus"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:4243"}}`:                                                                              false,
		`{"types":["platform"],"buffering":{"maxItems":10},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:4243"}}`:                                               false,
		`{"types":["platform"],"buffering":{"timeoutMs":10},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:4243"}}`:                                              false,
		`{"types":["platform"],"destination":{"protocol":"TCP","port":4243}}`:                                                                                                        false,
		`{"types":["platform"],"destination":{"protocol":"HTTP","URI":"http://example.com:4243/"}}`:                                                                                  false,
		`{"types":["platform"],"destination":{"protocol":"HTTP","URI":"http://10.0.0.1:4243/"}}`:                                                                                     false,
		`{"types":["platform"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain/"}}`:                                                                               false,
	} {
		var req subscribeRequest
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			t.Fatal(err)
		}
		s, msg := env.newSubscriber(&req)
		if (s != nil) != wantOK {
			t.Errorf("%s: subscriber %v (%s), want ok=%v", body, s != nil, msg, wantOK)
		}
	}
}
