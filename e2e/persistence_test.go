package e2e

import (
	"bytes"
	"errors"
	"maps"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// functionSnapshot is what the API shows of one function.
type functionSnapshot struct {
	config string // GetFunction.Configuration as JSON
	tags   map[string]string
	code   []byte
}

// snapshotFunctions captures every function the server lists, and the
// account usage.
func snapshotFunctions(t *testing.T, ts *testServer) (map[string]functionSnapshot, string) {
	t.Helper()
	c := ts.Lambda()
	ctx := t.Context()
	out := map[string]functionSnapshot{}
	pages := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range page.Functions {
			name := aws.ToString(f.FunctionName)
			g, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
			if err != nil {
				t.Fatal(err)
			}
			if a, b := jsonOf(t, f), jsonOf(t, g.Configuration); a != b {
				t.Errorf("%s: ListFunctions and GetFunction disagree:\n %s\n %s", name, a, b)
			}
			out[name] = functionSnapshot{config: jsonOf(t, g.Configuration), tags: g.Tags, code: ts.downloadCode(t, name)}
		}
	}
	settings, err := c.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	return out, jsonOf(t, settings.AccountUsage)
}

func compareSnapshots(t *testing.T, when string, before, after map[string]functionSnapshot, usageBefore, usageAfter string) {
	t.Helper()
	if len(before) != len(after) {
		t.Errorf("%s: %d functions, want %d", when, len(after), len(before))
	}
	for name, b := range before {
		a, ok := after[name]
		if !ok {
			t.Errorf("%s: function %s is gone", when, name)
			continue
		}
		if a.config != b.config {
			t.Errorf("%s: %s configuration changed:\n now %s\n was %s", when, name, a.config, b.config)
		}
		if !maps.Equal(a.tags, b.tags) {
			t.Errorf("%s: %s tags = %v, were %v", when, name, a.tags, b.tags)
		}
		if !bytes.Equal(a.code, b.code) {
			t.Errorf("%s: %s code changed", when, name)
		}
	}
	if usageAfter != usageBefore {
		t.Errorf("%s: account usage %s, was %s", when, usageAfter, usageBefore)
	}
}

// TestPersistenceAcrossRestart: everything the API stored survives a clean
// restart unchanged, and the restarted server keeps working.
func TestPersistenceAcrossRestart(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()

	ts.createFunction(t, "alpha", helloZip(t, "alpha"), func(in *lambda.CreateFunctionInput) {
		in.Tags = map[string]string{"team": "a", "tier": "1"}
		in.Environment = &types.Environment{Variables: map[string]string{"KEY": "value"}}
		in.Layers = []string{ts.publishLayer(t, "deps")}
		in.MemorySize = aws.Int32(768)
		in.Runtime = types.RuntimePython311
	})
	ts.createFunction(t, "beta", helloZip(t, "beta"), func(in *lambda.CreateFunctionInput) {
		in.Runtime = types.RuntimeNodejs20x
		in.Handler = aws.String("index.handler")
		in.Tags = map[string]string{"team": "b"}
	})
	ts.createFunction(t, "gamma", helloZip(t, "gamma"))
	ts.createFunction(t, "deleted", helloZip(t, "deleted"))
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("beta"), ZipFile: helloZip(t, "beta v2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("gamma"), Description: aws.String("changed")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(functionARN("gamma")), Tags: map[string]string{"late": "tag"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("deleted")}); err != nil {
		t.Fatal(err)
	}

	before, usage := snapshotFunctions(t, ts)
	if len(before) != 3 {
		t.Fatalf("before restart: %d functions, want 3", len(before))
	}
	g, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("alpha")})
	if err != nil {
		t.Fatal(err)
	}
	oldLocation := aws.ToString(g.Code.Location)

	ts.Restart()
	after, usageAfter := snapshotFunctions(t, ts)
	compareSnapshots(t, "after restart", before, after, usage, usageAfter)
	// A code URL handed out before the restart still works (its signing key
	// is stored, not made up per process).
	if status, body := httpGet(t, oldLocation); status != 200 || !bytes.Equal(body, before["alpha"].code) {
		t.Errorf("Code.Location from before the restart: %d (%d bytes)", status, len(body))
	}
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("deleted")})
	var rnf *types.ResourceNotFoundException
	if !errors.As(err, &rnf) {
		t.Errorf("deleted function after restart: %v", err)
	}

	// The restarted server works: create, update, a second restart.
	ts.createFunction(t, "delta", helloZip(t, "delta"))
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("alpha"), Timeout: aws.Int32(10)}); err != nil {
		t.Fatal(err)
	}
	before, usage = snapshotFunctions(t, ts)
	ts.Restart()
	after, usageAfter = snapshotFunctions(t, ts)
	compareSnapshots(t, "after a second restart", before, after, usage, usageAfter)
}

// TestPersistenceAfterKill: what the API acknowledged survives a crash
// (SIGKILL) of the server.
func TestPersistenceAfterKill(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()
	ts.createFunction(t, "crash-a", helloZip(t, "a"), func(in *lambda.CreateFunctionInput) {
		in.Tags = map[string]string{"k": "v"}
	})
	ts.createFunction(t, "crash-b", helloZip(t, "b"))
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("crash-b"), ZipFile: helloZip(t, "b2")}); err != nil {
		t.Fatal(err)
	}
	before, usage := snapshotFunctions(t, ts)
	// Acknowledged right before the crash.
	last := helloZip(t, "last")
	ts.createFunction(t, "crash-last", last)

	ts.Kill()
	ts.Restart()
	after, usageAfter := snapshotFunctions(t, ts)
	lastSnap, ok := after["crash-last"]
	if !ok {
		t.Fatal("the function created right before SIGKILL is gone")
	}
	if !bytes.Equal(lastSnap.code, last) {
		t.Error("the code of the function created right before SIGKILL changed")
	}
	delete(after, "crash-last")
	_ = usageAfter
	compareSnapshots(t, "after SIGKILL and restart", before, after, usage, usage)
}
