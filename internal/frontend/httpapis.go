package frontend

import (
	"crypto/rand"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
)

// HTTP APIs: route tables that map requests on the HTTP listener to
// functions, managed with Lamina's own operations (lamina api ...) and
// served by host name, <api-id>.execute-api.<region>.localhost, or by path,
// /<api-id>/... .

var (
	apiHostRE  = regexp.MustCompile(`^([a-z0-9]+)\.execute-api\.[a-z0-9-]+\.(localhost|amazonaws\.com)$`)
	routeKeyRE = regexp.MustCompile(`^(\$default|(ANY|GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (/|(/[^/{}]+|/\{[a-zA-Z0-9_]+\})*(/\{[a-zA-Z0-9_]+\+\})?))$`)
)

// APIURL returns the address of an HTTP API, by host name.
func (f *Frontend) APIURL(id string) string {
	return strings.Replace(f.FunctionURL(id), ".lambda-url.", ".execute-api.", 1)
}

// httpAPIOutput is the shape Lamina's API operations return.
type httpAPIOutput struct {
	*lamina.HTTPAPI
	APIEndpoint string
}

func (f *Frontend) apiOutput(api *lamina.HTTPAPI) httpAPIOutput {
	return httpAPIOutput{HTTPAPI: api, APIEndpoint: f.APIURL(api.APIID)}
}

// newAPIID returns a random 10-character API ID, as API Gateway's are.
func newAPIID() string { return strings.ToLower(rand.Text())[:10] }

type createAPIInput struct {
	Name           string
	StageVariables map[string]string
}

func (f *Frontend) createHTTPAPI(rq *request) error {
	var in createAPIInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.Name == "" || len(in.Name) > 128 {
		var v lamina.Violations
		v.Add(in.Name, "name", "Member must have length between 1 and 128")
		return v.Err()
	}
	api := &lamina.HTTPAPI{APIID: newAPIID(), Name: in.Name, StageVariables: in.StageVariables, Routes: []lamina.Route{},
		CreatedDate: lamina.FormatLastModified(time.Now())}
	if err := f.store.CreateHTTPAPI(rq.r.Context(), api); err != nil {
		return err
	}
	return rq.json(http.StatusCreated, f.apiOutput(api))
}

func (f *Frontend) apiNotFound(id string) error {
	return lamina.ErrNotFound("HTTP API not found: %s", id)
}

func (f *Frontend) getHTTPAPI(rq *request) error {
	api, err := f.store.GetHTTPAPI(rq.r.Context(), rq.r.PathValue("api"))
	if errors.Is(err, store.ErrNotFound) {
		return f.apiNotFound(rq.r.PathValue("api"))
	}
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, f.apiOutput(api))
}

func (f *Frontend) listHTTPAPIs(rq *request) error {
	out := struct{ Items []httpAPIOutput }{Items: []httpAPIOutput{}}
	for _, api := range f.store.ListHTTPAPIs(rq.r.Context()) {
		out.Items = append(out.Items, f.apiOutput(api))
	}
	return rq.json(http.StatusOK, out)
}

func (f *Frontend) deleteHTTPAPI(rq *request) error {
	id := rq.r.PathValue("api")
	if err := f.store.DeleteHTTPAPI(rq.r.Context(), id); errors.Is(err, store.ErrNotFound) {
		return f.apiNotFound(id)
	} else if err != nil {
		return err
	}
	return rq.noContent(http.StatusNoContent)
}

// updateHTTPAPI replaces an API's stage variables and name.
func (f *Frontend) updateHTTPAPI(rq *request) error {
	var in createAPIInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	id := rq.r.PathValue("api")
	api, err := f.store.UpdateHTTPAPI(rq.r.Context(), id, func(api *lamina.HTTPAPI) error {
		if in.Name != "" {
			api.Name = in.Name
		}
		if in.StageVariables != nil {
			api.StageVariables = in.StageVariables
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return f.apiNotFound(id)
	}
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, f.apiOutput(api))
}

type putRouteInput struct {
	RouteKey string
	Function string // a function name or ARN, optionally qualified
}

// putRoute adds a route to an API, or points an existing route key at
// another function.
func (f *Frontend) putRoute(rq *request) error {
	var in putRouteInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if !routeKeyRE.MatchString(in.RouteKey) {
		return lamina.ErrInvalidParameter("Invalid route key %q: want $default or \"METHOD /path\" with {param} segments and an optional final {proxy+}", in.RouteKey)
	}
	ref, err := f.parseRef(in.Function)
	if err != nil {
		return err
	}
	if _, err := f.getFunctionVersion(rq.r.Context(), ref); err != nil {
		return err
	}
	id := rq.r.PathValue("api")
	route := lamina.Route{RouteKey: in.RouteKey, Function: ref.Name, Qualifier: ref.Qualifier}
	api, err := f.store.UpdateHTTPAPI(rq.r.Context(), id, func(api *lamina.HTTPAPI) error {
		api.Routes = slices.DeleteFunc(api.Routes, func(r lamina.Route) bool { return r.RouteKey == route.RouteKey })
		api.Routes = append(api.Routes, route)
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return f.apiNotFound(id)
	}
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, f.apiOutput(api))
}

func (f *Frontend) deleteRoute(rq *request) error {
	key := rq.r.URL.Query().Get("RouteKey")
	id := rq.r.PathValue("api")
	found := false
	_, err := f.store.UpdateHTTPAPI(rq.r.Context(), id, func(api *lamina.HTTPAPI) error {
		n := len(api.Routes)
		api.Routes = slices.DeleteFunc(api.Routes, func(r lamina.Route) bool { return r.RouteKey == key })
		found = len(api.Routes) < n
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return f.apiNotFound(id)
	}
	if err != nil {
		return err
	}
	if !found {
		return lamina.ErrNotFound("Route not found: %s", key)
	}
	return rq.noContent(http.StatusNoContent)
}

// matchRoute finds the route of an API that serves method and path, as API
// Gateway does: the most specific path wins (a literal segment over a
// {param}, a {param} over {proxy+}), a route of the method over ANY, and
// $default when nothing else matches. It returns the path parameters.
func matchRoute(api *lamina.HTTPAPI, method, path string) (*lamina.Route, map[string]string) {
	var best *lamina.Route
	var bestParams map[string]string
	var bestScore []int
	segments := strings.Split(strings.Trim(path, "/"), "/")
	for i := range api.Routes {
		route := &api.Routes[i]
		routeMethod, routePath, ok := strings.Cut(route.RouteKey, " ")
		if !ok || (routeMethod != "ANY" && routeMethod != method) {
			continue
		}
		params, score, ok := matchPath(strings.Split(strings.Trim(routePath, "/"), "/"), segments)
		if !ok {
			continue
		}
		if routeMethod != "ANY" {
			score = append(score, 1)
		} else {
			score = append(score, 0)
		}
		if best == nil || slices.Compare(score, bestScore) > 0 {
			best, bestParams, bestScore = route, params, score
		}
	}
	if best != nil {
		return best, bestParams
	}
	for i := range api.Routes {
		if api.Routes[i].RouteKey == "$default" {
			return &api.Routes[i], nil
		}
	}
	return nil, nil
}

// matchPath matches request path segments against a route's, returning the
// parameters and a score that ranks specificity segment by segment
// (3 literal, 2 {param}, 1 {proxy+}).
func matchPath(route, segments []string) (map[string]string, []int, bool) {
	params := map[string]string{}
	var score []int
	for i, seg := range route {
		switch {
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "+}"):
			if i >= len(segments) || (len(segments) == 1 && segments[0] == "") {
				return nil, nil, false
			}
			params[strings.TrimSuffix(strings.TrimPrefix(seg, "{"), "+}")] = strings.Join(segments[i:], "/")
			return params, append(score, 1), true
		case i >= len(segments):
			return nil, nil, false
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			if segments[i] == "" {
				return nil, nil, false
			}
			params[strings.Trim(seg, "{}")] = segments[i]
			score = append(score, 2)
		case seg == segments[i]:
			score = append(score, 3)
		default:
			return nil, nil, false
		}
	}
	if len(route) != len(segments) {
		return nil, nil, false
	}
	if len(params) == 0 {
		params = nil
	}
	return params, score, true
}

// serveAPI serves a request for an HTTP API; it reports false when the
// request names no API.
func (f *Frontend) serveAPI(w http.ResponseWriter, r *http.Request) bool {
	id, path := "", r.URL.Path
	if label, ok := hostLabel(r, apiHostRE); ok {
		id = label
	} else {
		id, path = splitFirstSegment(r.URL.Path)
	}
	api, err := f.store.GetHTTPAPI(r.Context(), id)
	if err != nil {
		return false
	}
	requestID := uuid.NewString()
	w.Header().Set("apigw-requestid", requestID)
	route, params := matchRoute(api, r.Method, path)
	if route == nil {
		refuseURL(w, r, http.StatusNotFound, "Not Found")
		return true
	}
	body, release, ok := f.readURLBody(w, r, nil)
	if !ok {
		return true
	}
	defer release()
	ev := newHTTPEvent(r, body, path, requestID)
	ev.RouteKey, ev.RequestContext.RouteKey = route.RouteKey, route.RouteKey
	ev.PathParameters, ev.StageVariables = params, api.StageVariables
	ev.RequestContext.AccountID = f.cfg.AccountID
	ev.RequestContext.APIID, ev.RequestContext.DomainPrefix = api.APIID, api.APIID
	ev.RequestContext.DomainName = api.APIID + ".execute-api." + f.cfg.Region + ".amazonaws.com"
	f.invokeHTTP(w, r, route.Function, route.Qualifier, requestID, ev, false)
	return true
}
