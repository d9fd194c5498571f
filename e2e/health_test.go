package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// The abuse tests (one file per class of attack) share this file's checks:
// a bystander function that must keep answering while an attack runs, and a
// round of every kind of write that must succeed right after it, without a
// restart.

// bystander is a function that is not under attack, invoked again and again
// while an attack runs to show that the node keeps serving other tenants.
type bystander struct {
	ts   *testServer
	name string

	stop     chan struct{}
	done     chan struct{}
	ok, fail atomic.Int64
	mu       sync.Mutex
	lastErr  error
}

// startBystander creates a small Python function and invokes it in a loop
// until the returned bystander is stopped. It waits for the first success
// first, so the attack starts against a node that was serving.
func (ts *testServer) startBystander(t *testing.T) *bystander {
	t.Helper()
	name := "bystander-" + strings.ToLower(rand.Text()[:10])
	ts.createPy(t, name, "echo")
	ts.invokeOK(t, name, `{"bystander":true}`)
	b := &bystander{ts: ts, name: name, stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

func (b *bystander) loop() {
	defer close(b.done)
	client := b.ts.Lambda()
	for {
		select {
		case <-b.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(b.name), Payload: []byte(`{"bystander":true}`)})
		cancel()
		if err == nil && out.FunctionError != nil {
			err = fmt.Errorf("function error %s: %s", aws.ToString(out.FunctionError), out.Payload)
		}
		if err != nil {
			b.fail.Add(1)
			b.mu.Lock()
			b.lastErr = err
			b.mu.Unlock()
			time.Sleep(50 * time.Millisecond)
			continue
		}
		b.ok.Add(1)
		time.Sleep(20 * time.Millisecond)
	}
}

// finish stops the loop and requires that the bystander was answered during
// the attack and never failed.
func (b *bystander) finish(t *testing.T) {
	t.Helper()
	close(b.stop)
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	t.Logf("bystander %s: %d invocations answered, %d failed during the attack", b.name, b.ok.Load(), b.fail.Load())
	if b.fail.Load() > 0 {
		t.Errorf("bystander %s failed %d times during the attack; last: %v", b.name, b.fail.Load(), b.lastErr)
	}
	if b.ok.Load() == 0 {
		t.Errorf("bystander %s was never answered during the attack", b.name)
	}
}

// requireEveryWrite performs every kind of write the node stores — a
// function with code, configuration and code updates, a version, an alias,
// reserved concurrency, an event invoke config, a function URL, a tag, a
// layer, a schedule rule with a target, an asynchronous invocation that must
// run, and the deletes — and fails the test on the first that does not
// succeed. Abuse tests call it right after an attack, without a restart.
func (ts *testServer) requireEveryWrite(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	client := ts.Lambda()
	name := "writes-" + strings.ToLower(rand.Text()[:10])
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("after the attack, %s failed: %v", what, err)
		}
	}

	created := ts.createFunction(t, name, pyAppZip(t), func(in *lambda.CreateFunctionInput) { in.Handler = aws.String("app.echo") })
	ts.waitUpdated(t, name)
	_, err := client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(name), Description: aws.String("written after an attack"), RevisionId: created.RevisionId})
	step("UpdateFunctionConfiguration", err)
	ts.waitUpdated(t, name)
	_, err = client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: pyAppZip(t)})
	step("UpdateFunctionCode", err)
	ts.waitUpdated(t, name)
	version, err := client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(name)})
	step("PublishVersion", err)
	_, err = client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(name), Name: aws.String("live"), FunctionVersion: version.Version})
	step("CreateAlias", err)
	_, err = client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String(name), ReservedConcurrentExecutions: aws.Int32(5)})
	step("PutFunctionConcurrency", err)
	_, err = client.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(name), MaximumRetryAttempts: aws.Int32(0)})
	step("PutFunctionEventInvokeConfig", err)
	_, err = client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String(name), AuthType: types.FunctionUrlAuthTypeNone})
	step("CreateFunctionUrlConfig", err)
	_, err = client.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String(name), StatementId: aws.String("s3"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("s3.amazonaws.com")})
	step("AddPermission", err)
	_, err = client.TagResource(ctx, &lambda.TagResourceInput{Resource: created.FunctionArn, Tags: map[string]string{"after": "attack"}})
	step("TagResource", err)
	layerName := name + "-layer"
	_, err = client.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String(layerName),
		Content: &types.LayerVersionContentInput{ZipFile: zipFiles(t, map[string]string{"python/after.py": "X = 1\n"})}})
	step("PublishLayerVersion", err)
	events := ts.eventsClient()
	_, err = events.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(name), ScheduleExpression: aws.String("rate(1 day)")})
	step("PutRule", err)
	_, err = events.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(name),
		Targets: []ebtypes.Target{{Id: aws.String("fn"), Arn: created.FunctionArn}}})
	step("PutTargets", err)

	// An asynchronous invocation is stored, then run: its output shows in
	// the function's log.
	marker := "after-attack-" + rand.Text()[:10]
	ts.invokeEvent(t, name, fmt.Sprintf(`{"marker":%q}`, marker))
	ts.waitLogEvents(t, name, marker)
	ts.invokeOK(t, name+":live", `{"sync":"after the attack"}`)

	_, err = events.RemoveTargets(ctx, &eventbridge.RemoveTargetsInput{Rule: aws.String(name), Ids: []string{"fn"}})
	step("RemoveTargets", err)
	_, err = events.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String(name)})
	step("DeleteRule", err)
	_, err = client.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String(layerName), VersionNumber: aws.Int64(1)})
	step("DeleteLayerVersion", err)
	_, err = client.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String(name)})
	step("DeleteFunctionUrlConfig", err)
	_, err = client.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String(name), Name: aws.String("live")})
	step("DeleteAlias", err)
	_, err = client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(name)})
	step("DeleteFunction", err)
}

// TestEveryWriteOnAHealthyNode runs the abuse tests' checks on a node that
// was never attacked, so that a failure in an abuse test means the attack
// did the harm, not the check.
func TestEveryWriteOnAHealthyNode(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	b := ts.startBystander(t)
	ts.requireEveryWrite(t)
	b.finish(t)
}
