package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// TestAuthentication checks SigV4 on the API: only requests signed with the
// server's key pair, for service lambda in its region, at about the current
// time, get through, and refusals are AWS-shaped 403s.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.createFunction(t, "secret-fn", helloZip(t, "secret"))
	ctx := t.Context()
	id, secret := ts.Credentials()

	t.Run("UnknownKey", func(t *testing.T) {
		c := ts.LambdaWith(func(o *lambda.Options) { o.Credentials = staticCredentials("LKIAUNKNOWNKEY000000", secret) })
		_, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
		requireAPIError(t, err, "UnrecognizedClientException", 403, "The security token included in the request is invalid")
		// Authentication comes before anything about the function is told.
		_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("secret-fn")})
		requireAPIError(t, err, "UnrecognizedClientException", 403)
		_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("missing")})
		requireAPIError(t, err, "UnrecognizedClientException", 403)
	})

	t.Run("WrongSecret", func(t *testing.T) {
		c := ts.LambdaWith(func(o *lambda.Options) { o.Credentials = staticCredentials(id, secret+"x") })
		_, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
		requireAPIError(t, err, "InvalidSignatureException", 403, "signature")
		_, err = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("secret-fn")})
		requireAPIError(t, err, "InvalidSignatureException", 403)
		if _, err := ts.Lambda().GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("secret-fn")}); err != nil {
			t.Errorf("the function is gone after a refused delete: %v", err)
		}
	})

	t.Run("WrongRegion", func(t *testing.T) {
		c := ts.LambdaWith(func(o *lambda.Options) { o.Region = "eu-west-1" })
		_, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
		requireAPIError(t, err, "InvalidSignatureException", 403)
	})

	t.Run("SignatureExpired", func(t *testing.T) {
		r := ts.signedRequest(t, "GET", "/2015-03-31/functions", nil, id, secret, time.Now().Add(-10*time.Minute))
		checkAuthError(t, r, "InvalidSignatureException", "Signature expired")
	})

	t.Run("SignatureFromTheFuture", func(t *testing.T) {
		r := ts.signedRequest(t, "GET", "/2015-03-31/functions", nil, id, secret, time.Now().Add(10*time.Minute))
		checkAuthError(t, r, "InvalidSignatureException", "Signature not yet current")
	})

	t.Run("SlightSkewAccepted", func(t *testing.T) {
		for _, skew := range []time.Duration{-2 * time.Minute, 2 * time.Minute} {
			r := ts.signedRequest(t, "GET", "/2015-03-31/functions", nil, id, secret, time.Now().Add(skew))
			if r.Status != 200 {
				t.Errorf("signed %v from now: %d %s, want 200", skew, r.Status, r.Body)
			}
		}
	})

	t.Run("NoAuthorization", func(t *testing.T) {
		for _, path := range []string{"/2015-03-31/functions", "/2015-03-31/functions/secret-fn", "/2016-08-19/account-settings"} {
			r := ts.signedRequest(t, "GET", path, nil, "", "", time.Time{})
			checkAuthError(t, r, "MissingAuthenticationTokenException", "Missing Authentication Token")
		}
	})

	t.Run("MalformedAuthorization", func(t *testing.T) {
		req, err := http.NewRequest("GET", ts.Endpoint()+"/2015-03-31/functions", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 garbage")
		req.Header.Set("X-Amz-Date", time.Now().UTC().Format("20060102T150405Z"))
		r := doRaw(t, req)
		if r.Status != 403 || r.Header.Get("X-Amzn-ErrorType") == "" {
			t.Errorf("malformed Authorization: %d %q %s, want an AWS-shaped 403", r.Status, r.Header.Get("X-Amzn-ErrorType"), r.Body)
		}
	})

	t.Run("BodyChangedAfterSigning", func(t *testing.T) {
		signed := []byte(`{"Description":"signed"}`)
		sent := []byte(`{"Description":"forged"}`)
		req, err := http.NewRequest("PUT", ts.Endpoint()+"/2015-03-31/functions/secret-fn/configuration", bytes.NewReader(signed))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(signed)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, req,
			fmt.Sprintf("%x", sum), "lambda", testRegion, time.Now()); err != nil {
			t.Fatal(err)
		}
		req.Body = io.NopCloser(bytes.NewReader(sent))
		req.ContentLength = int64(len(sent))
		r := doRaw(t, req)
		checkAuthError(t, r, "InvalidSignatureException", "")
		g, err := ts.Lambda().GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("secret-fn")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(g.Description) == "forged" {
			t.Error("a forged body was applied")
		}
	})

	t.Run("DoubleEncodedPath", func(t *testing.T) {
		// The SDKs sign a percent-encoded ARN in the path encoded once more.
		path := "/2015-03-31/functions/" + strings.ReplaceAll(functionARN("secret-fn"), ":", "%3A") + "/configuration"
		r := ts.do(t, "GET", path, nil)
		if r.Status != 200 || !strings.Contains(string(r.Body), `"FunctionName":"secret-fn"`) {
			t.Errorf("GET %s: %d %s", path, r.Status, r.Body)
		}
	})
}

// checkAuthError checks a refused request: 403 with AWS's error shape, the
// code, and a message containing wantInMessage.
func checkAuthError(t *testing.T, r rawResponse, code, wantInMessage string) {
	t.Helper()
	if r.Status != 403 {
		t.Errorf("status = %d, want 403 (%s)", r.Status, r.Body)
	}
	if got := r.Header.Get("X-Amzn-ErrorType"); got != code {
		t.Errorf("X-Amzn-ErrorType = %q, want %q", got, code)
	}
	if id := r.Header.Get("X-Amzn-Requestid"); !requestIDRE.MatchString(id) {
		t.Errorf("x-amzn-RequestId = %q", id)
	}
	b := decodeErrorBody(t, r)
	msg, _ := b["message"].(string)
	if msg == "" {
		msg, _ = b["Message"].(string)
	}
	if msg == "" || !strings.Contains(msg, wantInMessage) {
		t.Errorf("message %q, want one containing %q (body %s)", msg, wantInMessage, r.Body)
	}
}

// doRaw sends req as is.
func doRaw(t *testing.T, req *http.Request) rawResponse {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: body}
}
