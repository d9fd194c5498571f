package frontend

import (
	"context"
	"errors"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/policy"
	"github.com/lamina-project/lamina/internal/sigv4"
)

// The HTTP listener of function URLs (and HTTP APIs): each URL is reached by
// host name, <url-id>.lambda-url.<region>.localhost, or by path,
// /<url-id>/..., for clients without wildcard DNS.

var urlHostRE = regexp.MustCompile(`^([a-z0-9]+)\.lambda-url\.[a-z0-9-]+\.(localhost|on\.aws)$`)

// URLHandler returns the handler of the function URL listener.
func (f *Frontend) URLHandler() http.Handler { return http.HandlerFunc(f.serveURL) }

// routeURL finds the function URL a request is for, and the path the
// function sees.
func (f *Frontend) routeURL(r *http.Request) (*lamina.FunctionURL, string) {
	if id, ok := hostLabel(r, urlHostRE); ok {
		u, err := f.store.FunctionURLByID(id)
		if err != nil {
			return nil, ""
		}
		return u, r.URL.Path
	}
	id, path := splitFirstSegment(r.URL.Path)
	u, err := f.store.FunctionURLByID(id)
	if err != nil {
		return nil, ""
	}
	return u, path
}

// hostLabel returns the first label of the request's host name when the
// host matches re (whose first group is that label).
func hostLabel(r *http.Request, re *regexp.Regexp) (string, bool) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	m := re.FindStringSubmatch(strings.ToLower(host))
	if m == nil {
		return "", false
	}
	return m[1], true
}

// splitFirstSegment splits "/id/rest" into "id" and "/rest" ("/" when
// nothing follows).
func splitFirstSegment(path string) (string, string) {
	id, rest, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return id, "/" + rest
}

func (f *Frontend) serveURL(w http.ResponseWriter, r *http.Request) {
	u, path := f.routeURL(r)
	if u == nil {
		if f.serveAPI(w, r) {
			return
		}
		refuseURL(w, r, http.StatusNotFound, "Not Found")
		return
	}
	requestID := uuid.NewString()
	w.Header().Set("x-amzn-RequestId", requestID)
	if preflight(w, r, u.Cors) {
		return
	}
	auth, ok := f.authenticateURL(r, u)
	if !ok {
		refuseURL(w, r, http.StatusForbidden, "Forbidden")
		return
	}
	if auth == nil {
		public, err := f.publicURLAllowed(r.Context(), u)
		if err != nil {
			f.log.Error("function URL policy check failed", "function", u.Function, "request_id", requestID, "err", err)
			refuseURL(w, r, http.StatusInternalServerError, "Internal Server Error")
			return
		}
		if !public {
			refuseURL(w, r, http.StatusForbidden, "Forbidden")
			return
		}
	}
	body, release, ok := f.readURLBody(w, r, auth)
	if !ok {
		return
	}
	defer release()
	if auth != nil && auth.Verify() != nil {
		writeHTTPError(w, http.StatusForbidden, "Forbidden")
		return
	}
	ev := newHTTPEvent(r, body, path, requestID)
	ev.RequestContext.APIID, ev.RequestContext.DomainPrefix = u.URLID, u.URLID
	ev.RequestContext.DomainName = u.URLID + ".lambda-url." + f.cfg.Region + ".on.aws"
	ev.RequestContext.AccountID = "anonymous"
	if auth != nil {
		ev.RequestContext.AccountID = f.cfg.AccountID
		ev.RequestContext.Authorizer = f.urlAuthorizer(auth)
	}
	addCORS(w, r, u.Cors)
	f.invokeHTTP(w, r, u.Function, u.Qualifier, requestID, ev, u.InvokeMode == "RESPONSE_STREAM")
}

// authenticateURL checks from its headers the SigV4 authentication of a
// request to an AWS_IAM URL, and that its caller may invoke function URLs;
// the signature is checked by the returned Auth once the body is read. A
// NONE URL needs nothing (nil, true).
func (f *Frontend) authenticateURL(r *http.Request, u *lamina.FunctionURL) (*sigv4.Auth, bool) {
	if u.AuthType != "AWS_IAM" {
		return nil, true
	}
	auth, err := f.verifiers[serviceLambda].Authenticate(r)
	return auth, err == nil && f.authorize(auth, serviceLambda, "InvokeFunctionUrl") == nil
}

// publicURLAllowed reports whether the policy of the function (or alias)
// of a URL whose AuthType is NONE lets anyone call it, as AWS requires of
// function URLs created since October 2025: lambda:InvokeFunctionUrl for
// principal "*" (AddPermission with FunctionUrlAuthType NONE, the
// statement the console adds as FunctionURLAllowPublicAccess), and
// lambda:InvokeFunction for "*" through a function URL (AddPermission
// with InvokedViaFunctionUrl, the console's FunctionURLAllowInvokeAction).
func (f *Frontend) publicURLAllowed(ctx context.Context, u *lamina.FunctionURL) (bool, error) {
	for _, r := range []policy.Request{
		{Action: policy.ActionInvokeFunctionURL, FunctionURLAuthType: u.AuthType},
		{Action: policy.ActionInvokeFunction, FunctionURLAuthType: u.AuthType, ViaFunctionURL: true},
	} {
		if ok, err := f.policies.Allows(ctx, u.Function, u.Qualifier, r); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

// urlAuthorizer is the authorizer context the function of an AWS_IAM URL
// sees.
func (f *Frontend) urlAuthorizer(auth *sigv4.Auth) map[string]any {
	key := auth.AccessKeyID()
	return map[string]any{"iam": map[string]any{
		"accessKey": key, "accountId": f.cfg.AccountID, "callerId": key,
		"userArn": "arn:aws:iam::" + f.cfg.AccountID + ":root", "userId": key,
		"cognitoIdentity": nil, "principalOrgId": nil,
	}}
}

// invokeHTTP runs the function a request routes to with its event and
// writes the function's answer as the HTTP response: at once, as the
// function streams it, when stream is set (a function URL in
// RESPONSE_STREAM mode).
func (f *Frontend) invokeHTTP(w http.ResponseWriter, r *http.Request, function, qualifier, requestID string, ev *httpEvent, stream bool) {
	fn, err := f.manager.Resolve(r.Context(), function, qualifier)
	if err != nil {
		writeHTTPError(w, http.StatusNotFound, "Not Found")
		return
	}
	invoked := f.functionARN(function)
	if qualifier != "" {
		invoked += ":" + qualifier
	}
	inv := &lamina.Invocation{
		RequestID: requestID, Function: fn, InvokedARN: invoked, Payload: []byte(jsonString(ev)),
		TraceID: lamina.NewTraceID(),
	}
	var out *urlStream
	if stream {
		out = &urlStream{w: w, rc: http.NewResponseController(w)}
		inv.Stream = out
	}
	res, err := f.manager.Invoke(r.Context(), inv)
	var le *lamina.Error
	switch {
	case out != nil && out.started && (err != nil || res.FunctionError != ""):
		// Status and headers are gone: cut the response short, so that the
		// client sees it failed, as Lambda does.
		panic(http.ErrAbortHandler)
	case errors.As(err, &le) && le.Status == http.StatusTooManyRequests:
		writeHTTPError(w, http.StatusTooManyRequests, "Rate Exceeded.")
	case err != nil:
		f.log.Error("function URL invocation failed", "function", function, "request_id", requestID, "err", err)
		writeHTTPError(w, http.StatusInternalServerError, "Internal Server Error")
	case res.FunctionError != "":
		writeHTTPError(w, http.StatusBadGateway, "Internal Server Error")
	case res.Streamed:
		out.finish()
	default:
		writeFunctionResponse(w, res.Payload, res.ContentType)
	}
}

// allowedOrigin returns the Access-Control-Allow-Origin value for origin
// under cfg, or "" when the origin is not allowed.
func allowedOrigin(cfg *lamina.Cors, origin string) string {
	if cfg == nil || origin == "" {
		return ""
	}
	for _, o := range cfg.AllowOrigins {
		if o == "*" {
			if cfg.AllowCredentials {
				return origin
			}
			return "*"
		}
		if strings.EqualFold(o, origin) {
			return origin
		}
	}
	return ""
}

// preflight answers a CORS preflight request (OPTIONS with
// Access-Control-Request-Method) from the URL's CORS configuration. It
// reports whether it answered.
func preflight(w http.ResponseWriter, r *http.Request, cfg *lamina.Cors) bool {
	if cfg == nil || r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h := w.Header()
	if origin := allowedOrigin(cfg, r.Header.Get("Origin")); origin != "" {
		method := r.Header.Get("Access-Control-Request-Method")
		if slices.Contains(cfg.AllowMethods, "*") || slices.ContainsFunc(cfg.AllowMethods, func(m string) bool { return strings.EqualFold(m, method) }) {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Methods", strings.Join(cfg.AllowMethods, ","))
			if len(cfg.AllowHeaders) > 0 {
				h.Set("Access-Control-Allow-Headers", strings.Join(cfg.AllowHeaders, ","))
			}
			if cfg.MaxAge > 0 {
				h.Set("Access-Control-Max-Age", strconv.Itoa(cfg.MaxAge))
			}
			if cfg.AllowCredentials {
				h.Set("Access-Control-Allow-Credentials", "true")
			}
		}
	}
	h.Set("Vary", "Origin")
	w.WriteHeader(http.StatusOK)
	return true
}

// addCORS adds the CORS headers of an actual (not preflight) response.
func addCORS(w http.ResponseWriter, r *http.Request, cfg *lamina.Cors) {
	origin := allowedOrigin(cfg, r.Header.Get("Origin"))
	if origin == "" {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	if len(cfg.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(cfg.ExposeHeaders, ","))
	}
	if cfg.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	h.Set("Vary", "Origin")
}
