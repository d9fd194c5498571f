package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// TestTypedErrors checks that the SDK maps every error the API returns to
// the exception the Lambda model names, with AWS's status and message.
func TestTypedErrors(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()
	ts.createFunction(t, "dup", helloZip(t, "dup"))
	missingARN := functionARN("missing")
	code := helloZip(t, "typed")

	create := func(mods ...func(*lambda.CreateFunctionInput)) func() error {
		return func() error {
			in := &lambda.CreateFunctionInput{
				FunctionName: aws.String("fresh"),
				Runtime:      types.RuntimePython312,
				Handler:      aws.String("app.handler"),
				Role:         aws.String(testRole),
				Code:         &types.FunctionCode{ZipFile: code},
			}
			for _, m := range mods {
				m(in)
			}
			_, err := c.CreateFunction(ctx, in)
			return err
		}
	}
	sixLayers := make([]string, 6)
	for i := range sixLayers {
		sixLayers[i] = fmt.Sprintf("arn:aws:lambda:us-east-1:000000000000:layer:l%d:1", i)
	}

	type check func(t *testing.T, err error)
	notFound := func(t *testing.T, err error) {
		t.Helper()
		var e *types.ResourceNotFoundException
		if !errors.As(err, &e) {
			t.Fatalf("got %T %v, want *types.ResourceNotFoundException", err, err)
		}
		requireAPIError(t, err, "ResourceNotFoundException", 404, "Function not found: "+missingARN)
		if aws.ToString(e.Type) != "User" {
			t.Errorf("Type = %q, want User", aws.ToString(e.Type))
		}
	}
	invalidParameter := func(wantInMessage ...string) check {
		return func(t *testing.T, err error) {
			t.Helper()
			var e *types.InvalidParameterValueException
			if !errors.As(err, &e) {
				t.Fatalf("got %T %v, want *types.InvalidParameterValueException", err, err)
			}
			requireAPIError(t, err, "InvalidParameterValueException", 400, wantInMessage...)
			if aws.ToString(e.Type) != "User" {
				t.Errorf("Type = %q, want User", aws.ToString(e.Type))
			}
		}
	}
	validation := func(wantInMessage ...string) check {
		return func(t *testing.T, err error) {
			t.Helper()
			apiErr := requireAPIError(t, err, "ValidationException", 400, wantInMessage...)
			if !strings.HasPrefix(apiErr.ErrorMessage(), "1 validation error detected: ") {
				t.Errorf("message %q does not start with %q", apiErr.ErrorMessage(), "1 validation error detected: ")
			}
		}
	}

	for _, tc := range []struct {
		name  string
		call  func() error
		check check
	}{
		{"GetFunction missing", func() error {
			_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("missing")})
			return err
		}, notFound},
		{"GetFunctionConfiguration missing", func() error {
			_, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("missing")})
			return err
		}, notFound},
		{"GetFunction missing by ARN", func() error {
			_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(missingARN)})
			return err
		}, notFound},
		{"DeleteFunction missing", func() error {
			_, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("missing")})
			return err
		}, notFound},
		{"UpdateFunctionConfiguration missing", func() error {
			_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("missing"), Timeout: aws.Int32(5)})
			return err
		}, notFound},
		{"UpdateFunctionCode missing", func() error {
			_, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("missing"), ZipFile: code})
			return err
		}, notFound},
		{"ListTags missing", func() error {
			_, err := c.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(missingARN)})
			return err
		}, notFound},

		{"CreateFunction duplicate", create(func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String("dup") }),
			func(t *testing.T, err error) {
				var e *types.ResourceConflictException
				if !errors.As(err, &e) {
					t.Fatalf("got %T %v, want *types.ResourceConflictException", err, err)
				}
				requireAPIError(t, err, "ResourceConflictException", 409, "Function already exist: dup")
			}},

		{"runtime java8", create(func(in *lambda.CreateFunctionInput) { in.Runtime = "java8" }), invalidParameter("java8")},
		{"runtime python2.7", create(func(in *lambda.CreateFunctionInput) { in.Runtime = "python2.7" }), invalidParameter("python2.7")},
		{"runtime nodejs12.x", create(func(in *lambda.CreateFunctionInput) { in.Runtime = "nodejs12.x" }), invalidParameter("nodejs12.x")},
		{"reserved env key", create(func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"OK": "1", "AWS_REGION": "eu-west-1"}}
		}), invalidParameter("reserved keys", "AWS_REGION")},
		{"reserved env key AWS_LAMBDA_FUNCTION_NAME", create(func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"AWS_LAMBDA_FUNCTION_NAME": "x"}}
		}), invalidParameter("AWS_LAMBDA_FUNCTION_NAME")},
		{"environment over 4 KB", create(func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"BIG": strings.Repeat("x", 4100)}}
		}), invalidParameter("4KB")},
		{"six layers", create(func(in *lambda.CreateFunctionInput) { in.Layers = sixLayers }), invalidParameter("5 layers")},
		{"missing handler", create(func(in *lambda.CreateFunctionInput) { in.Handler = nil }), invalidParameter("Handler")},
		{"missing runtime", create(func(in *lambda.CreateFunctionInput) { in.Runtime = "" }), invalidParameter("Runtime")},
		{"missing code", create(func(in *lambda.CreateFunctionInput) { in.Code = &types.FunctionCode{} }), invalidParameter()},

		{"MemorySize 64", create(func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(64) }),
			validation("1 validation error detected: Value '64' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to 128")},
		{"MemorySize 10241", create(func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(10241) }),
			validation("Value '10241' at 'memorySize' failed to satisfy constraint: Member must have value less than or equal to 10240")},
		{"Timeout 0", create(func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(0) }),
			validation("Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1")},
		{"Timeout 901", create(func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(901) }),
			validation("Value '901' at 'timeout' failed to satisfy constraint: Member must have value less than or equal to 900")},
		{"EphemeralStorage 511", create(func(in *lambda.CreateFunctionInput) {
			in.EphemeralStorage = &types.EphemeralStorage{Size: aws.Int32(511)}
		}), validation("Value '511' at 'ephemeralStorage.size' failed to satisfy constraint: Member must have value greater than or equal to 512")},
		{"EphemeralStorage 10241", create(func(in *lambda.CreateFunctionInput) {
			in.EphemeralStorage = &types.EphemeralStorage{Size: aws.Int32(10241)}
		}), validation("Value '10241' at 'ephemeralStorage.size' failed to satisfy constraint: Member must have value less than or equal to 10240")},
		{"name with a space", create(func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String("bad name") }),
			validation("Value 'bad name' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern")},
		{"name of 65 characters", create(func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String(strings.Repeat("n", 65)) }),
			validation("at 'functionName' failed to satisfy constraint: Member must have length less than or equal to 64")},
		{"env key 1abc", create(func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"1abc": "x"}}
		}), validation("at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]")},
		{"env key of one letter", create(func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"A": "x"}}
		}), validation("at 'environment.variables' failed to satisfy constraint")},
		// Environment variables are sensitive in the Lambda model: AWS says
		// "Value at 'environment.variables'" and never echoes them.
		{"env key error does not echo values", create(func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"bad-key": "s3cr3t-value", "DB_PASSWORD": "hunter2"}}
		}), func(t *testing.T, err error) {
			apiErr := requireAPIError(t, err, "ValidationException", 400)
			want := "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: " +
				"Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]"
			if msg := apiErr.ErrorMessage(); msg != want || strings.Contains(msg, "hunter2") || strings.Contains(msg, "s3cr3t") {
				t.Errorf("message = %q\nwant %q (no variable values in it)", msg, want)
			}
		}},
		{"role not an ARN", create(func(in *lambda.CreateFunctionInput) { in.Role = aws.String("lamina") }),
			validation("at 'role' failed to satisfy constraint")},
		{"description of 257 characters", create(func(in *lambda.CreateFunctionInput) { in.Description = aws.String(strings.Repeat("d", 257)) }),
			validation("at 'description' failed to satisfy constraint: Member must have length less than or equal to 256")},
		{"handler of 129 characters", create(func(in *lambda.CreateFunctionInput) { in.Handler = aws.String(strings.Repeat("h", 129)) }),
			validation("at 'handler' failed to satisfy constraint: Member must have length less than or equal to 128")},
		{"handler with a space", create(func(in *lambda.CreateFunctionInput) { in.Handler = aws.String("app handler") }),
			validation("Value 'app handler' at 'handler' failed to satisfy constraint")},
		{"architecture sparc", create(func(in *lambda.CreateFunctionInput) { in.Architectures = []types.Architecture{"sparc"} }),
			validation("Member must satisfy enum value set: [x86_64, arm64]")},
		{"two architectures", create(func(in *lambda.CreateFunctionInput) {
			in.Architectures = []types.Architecture{types.ArchitectureX8664, types.ArchitectureArm64}
		}), validation("at 'architectures' failed to satisfy constraint: Member must have length less than or equal to 1")},
		{"layer not an ARN", create(func(in *lambda.CreateFunctionInput) { in.Layers = []string{"deps"} }),
			validation("Value 'deps' at 'layers.1.member' failed to satisfy constraint")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatal("call succeeded, want an error")
			}
			tc.check(t, err)
		})
	}

	// A function name of exactly 64 characters is fine.
	long := strings.Repeat("n", 64)
	ts.createFunction(t, long, code)

	// Nothing refused above was created.
	list, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range list.Functions {
		names = append(names, aws.ToString(f.FunctionName))
	}
	if strings.Join(names, ",") != "dup,"+long {
		t.Errorf("functions after refused creates = %v, want [dup %s]", names, long)
	}
}

// errorBody is an error response body, decoded.
type errorBody map[string]any

func decodeErrorBody(t *testing.T, r rawResponse) errorBody {
	t.Helper()
	var b errorBody
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("error body %q is not a JSON object: %v", r.Body, err)
	}
	return b
}

var requestIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// checkErrorShape checks AWS's error wire format: status, X-Amzn-ErrorType,
// x-amzn-RequestId, a JSON body with the message under messageKey (and not
// under the other spelling), Type when wantType is set, and no code key.
func checkErrorShape(t *testing.T, r rawResponse, status int, code, messageKey, wantType, wantMessage string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("status = %d, want %d (body %s)", r.Status, status, r.Body)
	}
	if got := r.Header.Get("X-Amzn-ErrorType"); got != code {
		t.Errorf("X-Amzn-ErrorType = %q, want %q", got, code)
	}
	if id := r.Header.Get("X-Amzn-Requestid"); !requestIDRE.MatchString(id) {
		t.Errorf("x-amzn-RequestId = %q, want a UUID", id)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	b := decodeErrorBody(t, r)
	msg, ok := b[messageKey].(string)
	if !ok {
		t.Errorf("body %s has no %q", r.Body, messageKey)
	} else if wantMessage != "" && msg != wantMessage {
		t.Errorf("%s = %q, want %q", messageKey, msg, wantMessage)
	}
	other := map[string]string{"message": "Message", "Message": "message"}[messageKey]
	if _, ok := b[other]; ok {
		t.Errorf("body %s has both %q and %q", r.Body, messageKey, other)
	}
	if wantType != "" {
		if b["Type"] != wantType {
			t.Errorf("body %s: Type = %v, want %q", r.Body, b["Type"], wantType)
		}
	} else if _, ok := b["Type"]; ok {
		t.Errorf("body %s has a Type, want none", r.Body)
	}
	for _, k := range []string{"code", "Code"} {
		if v, ok := b[k]; ok && v != code {
			t.Errorf("body %s has %q = %v, disagreeing with the header", r.Body, k, v)
		}
	}
}

// TestErrorWireShape checks the raw HTTP of error and success responses with
// hand-signed requests.
func TestErrorWireShape(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.createFunction(t, "exists", helloZip(t, "exists"))

	r := ts.do(t, "GET", "/2015-03-31/functions/missing", nil)
	checkErrorShape(t, r, 404, "ResourceNotFoundException", "Message", "User", "Function not found: "+functionARN("missing"))

	createBody := func(fields map[string]any) []byte {
		in := map[string]any{
			"FunctionName": "exists",
			"Runtime":      "python3.12",
			"Handler":      "app.handler",
			"Role":         testRole,
			"Code":         map[string]any{"ZipFile": helloZip(t, "raw")}, // []byte encodes as base64
		}
		for k, v := range fields {
			in[k] = v
		}
		data, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	r = ts.do(t, "POST", "/2015-03-31/functions", createBody(nil))
	checkErrorShape(t, r, 409, "ResourceConflictException", "message", "User", "Function already exist: exists")

	r = ts.do(t, "POST", "/2015-03-31/functions", createBody(map[string]any{"FunctionName": "new", "Runtime": "java8"}))
	checkErrorShape(t, r, 400, "InvalidParameterValueException", "message", "User", "")

	r = ts.do(t, "POST", "/2015-03-31/functions", createBody(map[string]any{"FunctionName": "new", "MemorySize": 64}))
	checkErrorShape(t, r, 400, "ValidationException", "message", "",
		"1 validation error detected: Value '64' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to 128")

	r = ts.do(t, "PUT", "/2015-03-31/functions/exists/configuration", []byte(`{"RevisionId":"stale"}`))
	checkErrorShape(t, r, 412, "PreconditionFailedException", "message", "User", "")

	r = ts.do(t, "POST", "/2015-03-31/functions", []byte("this is not json"))
	if r.Status != 400 || r.Header.Get("X-Amzn-ErrorType") != "InvalidRequestContentException" {
		t.Errorf("unparsable body: %d %s %s, want 400 InvalidRequestContentException", r.Status, r.Header.Get("X-Amzn-ErrorType"), r.Body)
	}

	// Required members missing (the SDKs check these before sending): AWS
	// writes "Value null", without quotes.
	for _, field := range []struct{ json, model string }{
		{"Role", "role"}, {"FunctionName", "functionName"}, {"Code", "code"},
	} {
		body := map[string]any{}
		if err := json.Unmarshal(createBody(map[string]any{"FunctionName": "new"}), &body); err != nil {
			t.Fatal(err)
		}
		delete(body, field.json)
		data, _ := json.Marshal(body)
		r := ts.do(t, "POST", "/2015-03-31/functions", data)
		checkErrorShape(t, r, 400, "ValidationException", "message", "",
			"1 validation error detected: Value null at '"+field.model+"' failed to satisfy constraint: Member must not be null")
	}

	// Success: status codes of the model, a request ID on every response.
	ids := map[string]bool{}
	for _, tc := range []struct {
		method, path string
		body         []byte
		status       int
	}{
		{"POST", "/2015-03-31/functions", createBody(map[string]any{"FunctionName": "raw"}), 201},
		{"GET", "/2015-03-31/functions", nil, 200},
		{"GET", "/2015-03-31/functions/", nil, 200},
		{"GET", "/2015-03-31/functions/raw", nil, 200},
		{"GET", "/2015-03-31/functions/raw/configuration", nil, 200},
		{"GET", "/2016-08-19/account-settings", nil, 200},
		{"GET", "/2016-08-19/account-settings/", nil, 200},
		{"GET", "/2017-03-31/tags/" + strings.ReplaceAll(functionARN("raw"), ":", "%3A"), nil, 200},
		{"DELETE", "/2015-03-31/functions/raw", nil, 204},
	} {
		r := ts.do(t, tc.method, tc.path, tc.body)
		if r.Status != tc.status {
			t.Errorf("%s %s = %d %s, want %d", tc.method, tc.path, r.Status, r.Body, tc.status)
		}
		id := r.Header.Get("X-Amzn-Requestid")
		if !requestIDRE.MatchString(id) || ids[id] {
			t.Errorf("%s %s: x-amzn-RequestId %q is not a fresh UUID", tc.method, tc.path, id)
		}
		ids[id] = true
		if tc.status == 200 && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: Content-Type %q", tc.method, tc.path, r.Header.Get("Content-Type"))
		}
	}

	// The trailing-slash variants answer like the plain routes.
	for _, path := range []string{"/2015-03-31/functions", "/2016-08-19/account-settings"} {
		plain, slash := ts.do(t, "GET", path, nil), ts.do(t, "GET", path+"/", nil)
		var a, b map[string]any
		if json.Unmarshal(plain.Body, &a) != nil || json.Unmarshal(slash.Body, &b) != nil {
			t.Errorf("%s: bodies %s / %s", path, plain.Body, slash.Body)
			continue
		}
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("%s and %s/ differ:\n %s\n %s", path, path, plain.Body, slash.Body)
		}
	}
	var list struct{ Functions []map[string]any }
	if err := json.Unmarshal(ts.do(t, "GET", "/2015-03-31/functions/", nil).Body, &list); err != nil || len(list.Functions) != 1 || list.Functions[0]["FunctionName"] != "exists" {
		t.Errorf("GET /2015-03-31/functions/ = %+v (%v)", list, err)
	}

	// An unknown route is an AWS-shaped error, not a bare 404 page.
	r = ts.do(t, "GET", "/2015-03-31/no-such-thing", nil)
	if r.Status < 400 || r.Status >= 500 || r.Header.Get("X-Amzn-ErrorType") == "" || !json.Valid(r.Body) {
		t.Errorf("unknown route: %d %q %s", r.Status, r.Header.Get("X-Amzn-ErrorType"), r.Body)
	}
}
