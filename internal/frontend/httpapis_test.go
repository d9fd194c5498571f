package frontend

import (
	"maps"
	"testing"

	"github.com/lamina-project/lamina"
)

func TestMatchRoute(t *testing.T) {
	api := &lamina.HTTPAPI{Routes: []lamina.Route{
		{RouteKey: "GET /items/{id}", Function: "get"},
		{RouteKey: "GET /items/special", Function: "special"},
		{RouteKey: "POST /items", Function: "post"},
		{RouteKey: "ANY /items/{id}", Function: "any"},
		{RouteKey: "ANY /files/{proxy+}", Function: "files"},
		{RouteKey: "GET /", Function: "root"},
		{RouteKey: "$default", Function: "default"},
	}}
	for _, tc := range []struct {
		method, path, function string
		params                 map[string]string
	}{
		{"GET", "/items/42", "get", map[string]string{"id": "42"}},
		{"GET", "/items/special", "special", nil},
		{"DELETE", "/items/42", "any", map[string]string{"id": "42"}},
		{"POST", "/items", "post", nil},
		{"PUT", "/items", "default", nil},
		{"GET", "/files/a/b/c.txt", "files", map[string]string{"proxy": "a/b/c.txt"}},
		{"GET", "/files", "default", nil},
		{"GET", "/", "root", nil},
		{"GET", "/items/42/more", "default", nil},
	} {
		route, params := matchRoute(api, tc.method, tc.path)
		if route == nil || route.Function != tc.function || !maps.Equal(params, tc.params) {
			t.Errorf("%s %s: %+v %v; want %s %v", tc.method, tc.path, route, params, tc.function, tc.params)
		}
	}
	if route, _ := matchRoute(&lamina.HTTPAPI{Routes: []lamina.Route{{RouteKey: "GET /a", Function: "a"}}}, "GET", "/b"); route != nil {
		t.Errorf("matched %+v without a $default route", route)
	}
}
