package e2e

// Concurrency controls (issue 6): reserved concurrency (a ceiling and a
// guarantee, 100 always unreserved) and provisioned concurrency on versions
// and aliases (environments initialised ahead: no cold start).

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// provisionedReadyTimeout bounds how long provisioned environments may take
// to become READY; it only bounds a broken server.
const provisionedReadyTimeout = 60 * time.Second

// unreservedConcurrency is GetAccountSettings' UnreservedConcurrentExecutions.
func (ts *testServer) unreservedConcurrency(t *testing.T) int32 {
	t.Helper()
	out, err := ts.Lambda().GetAccountSettings(t.Context(), &lambda.GetAccountSettingsInput{})
	if err != nil {
		t.Fatalf("GetAccountSettings: %v", err)
	}
	if out.AccountLimit == nil || out.AccountLimit.UnreservedConcurrentExecutions == nil {
		t.Fatalf("GetAccountSettings: no AccountLimit.UnreservedConcurrentExecutions: %s", jsonOf(t, out))
	}
	return *out.AccountLimit.UnreservedConcurrentExecutions
}

// putReserved sets a function's reserved concurrency, failing on error.
func (ts *testServer) putReserved(t *testing.T, name string, n int32) {
	t.Helper()
	out, err := ts.Lambda().PutFunctionConcurrency(t.Context(), &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String(name), ReservedConcurrentExecutions: aws.Int32(n)})
	if err != nil {
		t.Fatalf("PutFunctionConcurrency %s %d: %v", name, n, err)
	}
	if aws.ToInt32(out.ReservedConcurrentExecutions) != n {
		t.Errorf("PutFunctionConcurrency %s answered %v, want %d", name, out.ReservedConcurrentExecutions, n)
	}
}

func TestReservedConcurrencyAPI(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()
	ts.createFunction(t, "res-a", helloZip(t, "a"))
	ts.createFunction(t, "res-b", helloZip(t, "b"))

	acct, err := c.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if acct.AccountLimit.ConcurrentExecutions != 1000 || aws.ToInt32(acct.AccountLimit.UnreservedConcurrentExecutions) != 1000 {
		t.Errorf("GetAccountSettings AccountLimit = %s, want 1000 concurrent, 1000 unreserved", jsonOf(t, acct.AccountLimit))
	}
	g, err := c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("res-a")})
	if err != nil {
		t.Fatalf("GetFunctionConcurrency: %v", err)
	}
	if g.ReservedConcurrentExecutions != nil {
		t.Errorf("GetFunctionConcurrency without a reservation = %d, want none", *g.ReservedConcurrentExecutions)
	}

	ts.putReserved(t, "res-a", 250)
	g, err = c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("res-a")})
	if err != nil || aws.ToInt32(g.ReservedConcurrentExecutions) != 250 {
		t.Errorf("GetFunctionConcurrency = %v (%v), want 250", g, err)
	}
	f, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("res-a")})
	if err != nil {
		t.Fatal(err)
	}
	if f.Concurrency == nil || aws.ToInt32(f.Concurrency.ReservedConcurrentExecutions) != 250 {
		t.Errorf("GetFunction Concurrency = %s, want 250", jsonOf(t, f.Concurrency))
	}
	if got := ts.unreservedConcurrency(t); got != 750 {
		t.Errorf("UnreservedConcurrentExecutions = %d after reserving 250, want 750", got)
	}
	// Changing a reservation counts only the difference.
	ts.putReserved(t, "res-a", 400)
	if got := ts.unreservedConcurrency(t); got != 600 {
		t.Errorf("UnreservedConcurrentExecutions = %d after changing the reservation to 400, want 600", got)
	}

	// At least 100 stay unreserved: 600 - 501 = 99 is refused, 500 accepted.
	_, err = c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("res-b"), ReservedConcurrentExecutions: aws.Int32(501)})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest,
		"Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100].")
	if g, err := c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("res-b")}); err != nil || g.ReservedConcurrentExecutions != nil {
		t.Errorf("after the refusal res-b has reservation %v (%v), want none", g, err)
	}
	ts.putReserved(t, "res-b", 500)
	if got := ts.unreservedConcurrency(t); got != 100 {
		t.Errorf("UnreservedConcurrentExecutions = %d, want 100", got)
	}
	_, err = c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("res-a"), ReservedConcurrentExecutions: aws.Int32(401)})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest, "below its minimum value of [100]")
	_, err = c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("res-a"), ReservedConcurrentExecutions: aws.Int32(-1)})
	requireAPIErrorIn(t, err, http.StatusBadRequest, "ValidationException", "InvalidParameterValueException")
	_, err = c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("missing"), ReservedConcurrentExecutions: aws.Int32(1)})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)

	// Deleting gives the reservation back.
	if _, err := c.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("res-b")}); err != nil {
		t.Fatalf("DeleteFunctionConcurrency: %v", err)
	}
	if got := ts.unreservedConcurrency(t); got != 600 {
		t.Errorf("UnreservedConcurrentExecutions = %d after deleting res-b's reservation, want 600", got)
	}
	f, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("res-b")})
	if err != nil {
		t.Fatal(err)
	}
	if f.Concurrency != nil && f.Concurrency.ReservedConcurrentExecutions != nil {
		t.Errorf("GetFunction Concurrency after the deletion = %s, want none", jsonOf(t, f.Concurrency))
	}
	// Deleting the function gives its reservation back too.
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("res-a")}); err != nil {
		t.Fatal(err)
	}
	if got := ts.unreservedConcurrency(t); got != 1000 {
		t.Errorf("UnreservedConcurrentExecutions = %d after deleting the function with the reservation, want 1000", got)
	}
}

func TestReservedConcurrencyThrottles(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.createPy(t, "reserved-two", "sleep")
	ts.createPy(t, "reserved-zero", "echo")
	ts.createPy(t, "unreserved", "sleep")
	ts.putReserved(t, "reserved-two", 2)
	ts.putReserved(t, "reserved-zero", 0)

	// Three simultaneous calls of a function with 2 reserved: one is
	// throttled. Meanwhile three calls of a function without a reservation
	// all run.
	var wg sync.WaitGroup
	var freeResults []invokeResult
	var freeErrs []error
	wg.Add(1)
	go func() {
		defer wg.Done()
		freeResults, freeErrs = ts.parallelInvoke(t, 3, "unreserved", `{"seconds":1.5}`)
	}()
	results, errs := ts.parallelInvoke(t, 3, "reserved-two", `{"seconds":1.5}`)
	wg.Wait()
	ok, throttled := 0, 0
	for i := range 3 {
		if errs[i] != nil {
			throttled++
			if e := requireThrottled(t, errs[i]); e.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
				t.Errorf("Reason = %q, want ReservedFunctionConcurrentInvocationLimitExceeded", e.Reason)
			}
			continue
		}
		if results[i].FunctionError != "" {
			t.Errorf("call %d: %s", i, results[i].Payload)
		}
		ok++
	}
	if ok != 2 || throttled != 1 {
		t.Errorf("reserved concurrency 2, three simultaneous calls: %d ran and %d were throttled, want 2 and 1", ok, throttled)
	}
	for i := range 3 {
		if freeErrs[i] != nil || freeResults[i].FunctionError != "" {
			t.Errorf("a function without a reservation, call %d of 3 at once: %v %s", i, freeErrs[i], freeResults[i].Payload)
		}
	}
	// Once the calls are done, the next one runs.
	ts.invokeOK(t, "reserved-two", `{"seconds":0}`)

	// The reservation is the function's, whatever version or alias runs:
	// $LATEST, version 1 and an alias of it share it.
	if _, err := ts.Lambda().PublishVersion(t.Context(), &lambda.PublishVersionInput{FunctionName: aws.String("reserved-two")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Lambda().CreateAlias(t.Context(), &lambda.CreateAliasInput{FunctionName: aws.String("reserved-two"), Name: aws.String("a"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	names := []string{"reserved-two", "reserved-two:1", "reserved-two:a"}
	errs = make([]error, len(names))
	start := make(chan struct{})
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var r invokeResult
			r, errs[i] = ts.tryInvoke(t, name, `{"seconds":1.5}`)
			if errs[i] == nil && r.FunctionError != "" {
				errs[i] = fmt.Errorf("function error: %s", r.Payload)
			}
		}()
	}
	close(start)
	wg.Wait()
	throttled = 0
	for i, err := range errs {
		switch {
		case err == nil:
		case httpStatus(err) == http.StatusTooManyRequests:
			throttled++
		default:
			t.Errorf("%s: %v", names[i], err)
		}
	}
	if throttled != 1 {
		t.Errorf("reserved concurrency 2, simultaneous calls of $LATEST, version 1 and an alias: %d throttled, want 1", throttled)
	}

	// Reserved 0 throttles every call; a function without a reservation
	// still runs.
	for range 3 {
		_, err := ts.tryInvoke(t, "reserved-zero", `{}`)
		if e := requireThrottled(t, err); e.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
			t.Errorf("reserved 0: Reason = %q", e.Reason)
		}
	}
	ts.invokeOK(t, "unreserved", `{"seconds":0}`)
	// Through its function URL, a throttled call is a 429.
	u := ts.createURL(t, "reserved-zero", "", types.FunctionUrlAuthTypeNone, nil)
	if r := urlRequest(t, "GET", ts.URLEndpoint()+"/"+urlID(t, aws.ToString(u.FunctionUrl))+"/", "", nil, nil); r.Status != http.StatusTooManyRequests {
		t.Errorf("function URL of a function with reserved concurrency 0: %d %s, want 429", r.Status, r.Body)
	}
	// Without the reservation it runs again.
	if _, err := ts.Lambda().DeleteFunctionConcurrency(t.Context(), &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("reserved-zero")}); err != nil {
		t.Fatal(err)
	}
	ts.invokeOK(t, "reserved-zero", `{}`)
}

// waitProvisionedReady polls GetProvisionedConcurrencyConfig until READY
// and returns the config; it requires IN_PROGRESS or READY on the way.
func (ts *testServer) waitProvisionedReady(t *testing.T, name, qualifier string) *lambda.GetProvisionedConcurrencyConfigOutput {
	t.Helper()
	deadline := time.Now().Add(provisionedReadyTimeout)
	for {
		out, err := ts.Lambda().GetProvisionedConcurrencyConfig(t.Context(), &lambda.GetProvisionedConcurrencyConfigInput{
			FunctionName: aws.String(name), Qualifier: aws.String(qualifier)})
		if err != nil {
			t.Fatalf("GetProvisionedConcurrencyConfig %s:%s: %v", name, qualifier, err)
		}
		switch out.Status {
		case types.ProvisionedConcurrencyStatusEnumReady:
			return out
		case types.ProvisionedConcurrencyStatusEnumInProgress:
		default:
			t.Fatalf("provisioned concurrency of %s:%s: Status %q (%s), want IN_PROGRESS then READY", name, qualifier, out.Status, aws.ToString(out.StatusReason))
		}
		if time.Now().After(deadline) {
			t.Fatalf("provisioned concurrency of %s:%s still IN_PROGRESS after %v: %s", name, qualifier, provisionedReadyTimeout, jsonOf(t, out))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestProvisionedConcurrency(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	c := ts.Lambda()
	ctx := t.Context()
	ts.createPy(t, "prov", "environ")
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("prov")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("prov"), Name: aws.String("warm"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	ts.createPy(t, "prov-version", "environ", func(in *lambda.CreateFunctionInput) { in.Publish = true })

	// Not on $LATEST.
	_, err := c.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("prov"),
		Qualifier: aws.String("$LATEST"), ProvisionedConcurrentExecutions: aws.Int32(1)})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest)
	_, err = c.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("prov"),
		Qualifier: aws.String("nope"), ProvisionedConcurrentExecutions: aws.Int32(1)})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	_, err = c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("prov"), Qualifier: aws.String("warm")})
	requireAPIError(t, err, "ProvisionedConcurrencyConfigNotFoundException", http.StatusNotFound)

	// On an alias and on a version.
	for _, target := range []struct{ name, qualifier string }{{"prov", "warm"}, {"prov-version", "1"}} {
		put, err := c.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String(target.name),
			Qualifier: aws.String(target.qualifier), ProvisionedConcurrentExecutions: aws.Int32(1)})
		if err != nil {
			t.Fatalf("PutProvisionedConcurrencyConfig %s:%s: %v", target.name, target.qualifier, err)
		}
		if put.Status != types.ProvisionedConcurrencyStatusEnumInProgress || aws.ToInt32(put.RequestedProvisionedConcurrentExecutions) != 1 {
			t.Errorf("PutProvisionedConcurrencyConfig answered %s, want IN_PROGRESS, 1 requested", jsonOf(t, put))
		}
	}
	for _, target := range []struct{ name, qualifier, version string }{{"prov", "warm", "1"}, {"prov-version", "1", "1"}} {
		ready := ts.waitProvisionedReady(t, target.name, target.qualifier)
		if aws.ToInt32(ready.AllocatedProvisionedConcurrentExecutions) != 1 || aws.ToInt32(ready.AvailableProvisionedConcurrentExecutions) != 1 ||
			aws.ToInt32(ready.RequestedProvisionedConcurrentExecutions) != 1 {
			t.Errorf("READY config of %s:%s = %s, want 1 requested, allocated and available", target.name, target.qualifier, jsonOf(t, ready))
		}
		// The first call finds an initialised environment: no Init
		// Duration, and it knows it was provisioned.
		r := ts.invokeOK(t, target.name, `{}`, func(in *lambda.InvokeInput) { in.Qualifier = aws.String(target.qualifier) })
		if r.cold(t) {
			t.Errorf("%s:%s: the first call after READY was a cold start:\n%s", target.name, target.qualifier, r.report(t).Line)
		}
		env, _ := r.object(t)["environ"].(map[string]any)
		if got := env["AWS_LAMBDA_INITIALIZATION_TYPE"]; got != "provisioned-concurrency" {
			t.Errorf("%s:%s: AWS_LAMBDA_INITIALIZATION_TYPE = %v, want provisioned-concurrency", target.name, target.qualifier, got)
		}
		if r.ExecutedVersion != target.version {
			t.Errorf("%s:%s: executed version %q", target.name, target.qualifier, r.ExecutedVersion)
		}
	}
	// Pointing the alias at another version provisions that version: once
	// READY again, the alias's first call of version 2 is not a cold start.
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("prov"),
		Environment: &types.Environment{Variables: map[string]string{"MARK": "second"}}}); err != nil {
		t.Fatal(err)
	}
	if v, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("prov")}); err != nil || aws.ToString(v.Version) != "2" {
		t.Fatalf("PublishVersion: %v %v", v, err)
	}
	if _, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("prov"), Name: aws.String("warm"), FunctionVersion: aws.String("2")}); err != nil {
		t.Fatal(err)
	}
	ts.waitProvisionedReady(t, "prov", "warm")
	r := ts.invokeOK(t, "prov:warm", `{}`)
	env, _ := r.object(t)["environ"].(map[string]any)
	if r.ExecutedVersion != "2" || env["MARK"] != "second" || env["AWS_LAMBDA_INITIALIZATION_TYPE"] != "provisioned-concurrency" || r.cold(t) {
		t.Errorf("after UpdateAlias to version 2 and READY: executed %q, MARK %v, AWS_LAMBDA_INITIALIZATION_TYPE %v, cold %v; want version 2 from a provisioned environment, no cold start",
			r.ExecutedVersion, env["MARK"], env["AWS_LAMBDA_INITIALIZATION_TYPE"], r.cold(t))
	}

	// $LATEST is not provisioned: on demand, cold.
	r = ts.invokeOK(t, "prov", `{}`)
	if !r.cold(t) {
		t.Errorf("the first call of $LATEST was not a cold start")
	}
	if env, _ := r.object(t)["environ"].(map[string]any); env["AWS_LAMBDA_INITIALIZATION_TYPE"] != "on-demand" {
		t.Errorf("$LATEST: AWS_LAMBDA_INITIALIZATION_TYPE = %v, want on-demand", env["AWS_LAMBDA_INITIALIZATION_TYPE"])
	}

	// Reserved concurrency cannot go below what is provisioned.
	_, err = c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("prov"), ReservedConcurrentExecutions: aws.Int32(0)})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest)

	list, err := c.ListProvisionedConcurrencyConfigs(ctx, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String("prov")})
	if err != nil {
		t.Fatalf("ListProvisionedConcurrencyConfigs: %v", err)
	}
	if len(list.ProvisionedConcurrencyConfigs) != 1 || aws.ToString(list.ProvisionedConcurrencyConfigs[0].FunctionArn) != functionARN("prov")+":warm" ||
		list.ProvisionedConcurrencyConfigs[0].Status != types.ProvisionedConcurrencyStatusEnumReady {
		t.Errorf("ListProvisionedConcurrencyConfigs = %s, want the READY config of prov:warm", jsonOf(t, list.ProvisionedConcurrencyConfigs))
	}

	if _, err := c.DeleteProvisionedConcurrencyConfig(ctx, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: aws.String("prov"), Qualifier: aws.String("warm")}); err != nil {
		t.Fatalf("DeleteProvisionedConcurrencyConfig: %v", err)
	}
	_, err = c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("prov"), Qualifier: aws.String("warm")})
	requireAPIError(t, err, "ProvisionedConcurrencyConfigNotFoundException", http.StatusNotFound)
	list, err = c.ListProvisionedConcurrencyConfigs(ctx, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String("prov")})
	if err != nil || len(list.ProvisionedConcurrencyConfigs) != 0 {
		t.Errorf("ListProvisionedConcurrencyConfigs after the deletion = %v (%v), want none", list, err)
	}
	_, err = c.DeleteProvisionedConcurrencyConfig(ctx, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: aws.String("prov"), Qualifier: aws.String("warm")})
	requireAPIError(t, err, "ProvisionedConcurrencyConfigNotFoundException", http.StatusNotFound)
}
