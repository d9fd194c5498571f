package frontend

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
)

// Function URL configs: Create/Get/Update/Delete/ListFunctionUrlConfigs.

type functionURLInput struct {
	AuthType   *string
	Cors       *lamina.Cors
	InvokeMode *string
}

// functionURLConfig is the API shape of a function URL.
type functionURLConfig struct {
	FunctionUrl      string
	FunctionArn      string
	AuthType         string
	Cors             *lamina.Cors `json:",omitempty"`
	CreationTime     string
	LastModifiedTime string `json:",omitempty"`
	InvokeMode       string
}

// urlTime formats a function URL's times as AWS does.
func urlTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// FunctionURL returns the address of a function URL, by host name:
// http://<url-id>.lambda-url.<region>.localhost:<port>/. The same URL also
// answers by path: http://<url listener>/<url-id>/.
func (f *Frontend) FunctionURL(id string) string {
	_, port, err := net.SplitHostPort(f.cfg.URLListen)
	if err != nil {
		port = "80"
	}
	return fmt.Sprintf("http://%s.lambda-url.%s.localhost:%s/", id, f.cfg.Region, port)
}

func (f *Frontend) urlConfigOutput(u *lamina.FunctionURL, withLastModified bool) functionURLConfig {
	arn := f.functionARN(u.Function)
	if u.Qualifier != "" {
		arn += ":" + u.Qualifier
	}
	out := functionURLConfig{FunctionUrl: f.FunctionURL(u.URLID), FunctionArn: arn, AuthType: u.AuthType, Cors: u.Cors,
		CreationTime: u.CreationTime, InvokeMode: u.InvokeMode}
	if withLastModified {
		out.LastModifiedTime = u.LastModifiedTime
	}
	return out
}

// urlTarget returns the function and qualifier of a URL config request:
// $LATEST or an alias that exists.
func (f *Frontend) urlTarget(rq *request) (lamina.FunctionRef, error) {
	ref, err := f.requestRef(rq)
	if err != nil {
		return ref, err
	}
	if ref.Qualifier == lamina.LatestVersion {
		ref.Qualifier = ""
	}
	if lamina.IsVersionNumber(ref.Qualifier) {
		return ref, lamina.ErrInvalidParameter("Function URLs can be created on $LATEST or an alias, not on a published version.")
	}
	_, err = f.getFunctionVersion(rq.r.Context(), ref)
	return ref, err
}

// validateURLInput checks AuthType, InvokeMode and CORS.
func validateURLInput(in *functionURLInput, create bool) error {
	var v lamina.Violations
	if in.AuthType == nil && create {
		v.AddMissing("authType")
	}
	if in.AuthType != nil && *in.AuthType != "NONE" && *in.AuthType != "AWS_IAM" {
		v.Add(*in.AuthType, "authType", "Member must satisfy enum value set: [NONE, AWS_IAM]")
	}
	if in.InvokeMode != nil && *in.InvokeMode != "BUFFERED" && *in.InvokeMode != "RESPONSE_STREAM" {
		v.Add(*in.InvokeMode, "invokeMode", "Member must satisfy enum value set: [BUFFERED, RESPONSE_STREAM]")
	}
	if c := in.Cors; c != nil {
		rangeCheck(&v, c.MaxAge, "cors.maxAge", 0, 86400)
	}
	return v.Err()
}

// newURLID returns a random 32-character URL ID of lowercase letters and
// digits, as AWS's are.
func newURLID() string {
	return strings.ToLower(rand.Text() + rand.Text())[:32]
}

func (f *Frontend) createFunctionURLConfig(rq *request) error {
	var in functionURLInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if err := validateURLInput(&in, true); err != nil {
		return err
	}
	ref, err := f.urlTarget(rq)
	if err != nil {
		return err
	}
	now := urlTime(time.Now())
	u := &lamina.FunctionURL{URLID: newURLID(), Function: ref.Name, Qualifier: ref.Qualifier, AuthType: *in.AuthType,
		Cors: in.Cors, InvokeMode: "BUFFERED", CreationTime: now, LastModifiedTime: now}
	if in.InvokeMode != nil {
		u.InvokeMode = *in.InvokeMode
	}
	if err := f.store.CreateFunctionURL(rq.r.Context(), u); errors.Is(err, store.ErrExists) {
		return lamina.ErrConflict("Failed to create function url config for [functionArn = %s]. Error message:  FunctionUrlConfig exists for this Lambda function",
			f.urlConfigOutput(u, false).FunctionArn)
	} else if err != nil {
		return err
	}
	return rq.json(http.StatusCreated, f.urlConfigOutput(u, false))
}

func (f *Frontend) urlNotFound() error {
	return lamina.ErrNotFound("The resource you requested does not exist.")
}

func (f *Frontend) getFunctionURLConfig(rq *request) error {
	ref, err := f.urlTarget(rq)
	if err != nil {
		return err
	}
	u, err := f.store.GetFunctionURL(rq.r.Context(), ref.Name, ref.Qualifier)
	if errors.Is(err, store.ErrNotFound) {
		return f.urlNotFound()
	}
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, f.urlConfigOutput(u, true))
}

func (f *Frontend) updateFunctionURLConfig(rq *request) error {
	var in functionURLInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if err := validateURLInput(&in, false); err != nil {
		return err
	}
	ref, err := f.urlTarget(rq)
	if err != nil {
		return err
	}
	u, err := f.store.UpdateFunctionURL(rq.r.Context(), ref.Name, ref.Qualifier, func(u *lamina.FunctionURL) error {
		if in.AuthType != nil {
			u.AuthType = *in.AuthType
		}
		if in.Cors != nil {
			u.Cors = in.Cors
		}
		if in.InvokeMode != nil {
			u.InvokeMode = *in.InvokeMode
		}
		u.LastModifiedTime = urlTime(time.Now())
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return f.urlNotFound()
	}
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, f.urlConfigOutput(u, true))
}

func (f *Frontend) deleteFunctionURLConfig(rq *request) error {
	ref, err := f.urlTarget(rq)
	if err != nil {
		return err
	}
	if err := f.store.DeleteFunctionURL(rq.r.Context(), ref.Name, ref.Qualifier); errors.Is(err, store.ErrNotFound) {
		return f.urlNotFound()
	} else if err != nil {
		return err
	}
	return rq.noContent(http.StatusNoContent)
}

func (f *Frontend) listFunctionURLConfigs(rq *request) error {
	ref, err := f.parseRef(rq.r.PathValue("name"))
	if err != nil {
		return err
	}
	if _, err := f.getFunctionVersion(rq.r.Context(), lamina.FunctionRef{Name: ref.Name}); err != nil {
		return err
	}
	configs := []functionURLConfig{}
	for _, u := range f.store.ListFunctionURLs(rq.r.Context(), ref.Name) {
		configs = append(configs, f.urlConfigOutput(u, true))
	}
	items, next, err := page(rq, configs)
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct {
		FunctionUrlConfigs []functionURLConfig
		NextMarker         string `json:",omitempty"`
	}{items, next})
}
