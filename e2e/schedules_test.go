package e2e

// Schedules (issue 7): EventBridge rules with rate and cron expressions
// through the EventBridge API (aws-sdk-go-v2 service/eventbridge) and
// `lamina schedule`, and rules that fire their function targets.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// scheduleTimeScale compresses rate schedules: rate(1 minute) fires every
// 0.6 s.
const scheduleTimeScale = "0.01"

// scheduleQuietPeriod is how long a schedule must stay silent to count as
// stopped: five periods of rate(1 minute) at scheduleTimeScale.
const scheduleQuietPeriod = 3 * time.Second

// scheduleStopTimeout bounds the wait for a stopped schedule to go quiet;
// it only bounds a broken server.
const scheduleStopTimeout = 30 * time.Second

// eventsClient returns an EventBridge client for the server, with the admin
// credentials and no retries.
func (ts *testServer) eventsClient() *eventbridge.Client {
	id, secret := ts.Credentials()
	return eventbridge.New(eventbridge.Options{
		Region:           ts.region(),
		BaseEndpoint:     aws.String(ts.Endpoint()),
		Credentials:      staticCredentials(id, secret),
		RetryMaxAttempts: 1,
	})
}

// ruleARN is the ARN of a rule on the default event bus of a test server.
func ruleARN(name string) string {
	return "arn:aws:events:" + testRegion + ":" + testAccountID + ":rule/" + name
}

// allowRule lets the rule ruleArn invoke function (a name or an ARN), as
// `aws lambda add-permission` does for an EventBridge target.
func allowRule(t *testing.T, c *lambda.Client, function, ruleArn string) {
	t.Helper()
	_, err := c.AddPermission(t.Context(), &lambda.AddPermissionInput{FunctionName: aws.String(function),
		StatementId: aws.String("events-" + path.Base(ruleArn)), Action: aws.String("lambda:InvokeFunction"),
		Principal: aws.String("events.amazonaws.com"), SourceArn: aws.String(ruleArn)})
	if err != nil {
		t.Fatalf("AddPermission for rule %s on %s: %v", ruleArn, function, err)
	}
}

// functionLogEvents returns every log event of a function, following
// nextToken.
func (ts *testServer) functionLogEvents(t *testing.T, client *cloudwatchlogs.Client, function string) []logtypes.FilteredLogEvent {
	t.Helper()
	var events []logtypes.FilteredLogEvent
	pages := cloudwatchlogs.NewFilterLogEventsPaginator(client, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/" + function)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatalf("FilterLogEvents %s: %v", function, err)
		}
		events = append(events, page.Events...)
	}
	return events
}

// sawEvents returns the events a pyApp echo function printed ("python saw
// {...}"), in log order.
func sawEvents(t *testing.T, events []logtypes.FilteredLogEvent) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range events {
		msg, ok := strings.CutPrefix(aws.ToString(e.Message), "python saw ")
		if !ok {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(strings.TrimSpace(msg)), &m); err != nil {
			t.Fatalf("the function printed an event that is not JSON: %q: %v", msg, err)
		}
		out = append(out, m)
	}
	return out
}

// waitSawEvents polls the logs of a pyApp echo function until done accepts
// the events it printed, and returns them; logsPollTimeout bounds a broken
// server.
func (ts *testServer) waitSawEvents(t *testing.T, function, what string, done func([]map[string]any) bool) []map[string]any {
	t.Helper()
	client := ts.Logs()
	deadline := time.Now().Add(logsPollTimeout)
	for {
		events := ts.functionLogEvents(t, client, function)
		saw := sawEvents(t, events)
		if done(saw) {
			return saw
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the log of %s still lacks %s; it has:\n%s", logsPollTimeout, function, what, messagesText(events))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitScheduleQuiet waits until a function has printed no new event for
// scheduleQuietPeriod and returns how many it printed: a schedule that
// still fires never goes quiet, and the test fails at scheduleStopTimeout.
func (ts *testServer) waitScheduleQuiet(t *testing.T, function string) int {
	t.Helper()
	client := ts.Logs()
	deadline := time.Now().Add(scheduleStopTimeout)
	last, since := -1, time.Now()
	for {
		n := len(sawEvents(t, ts.functionLogEvents(t, client, function)))
		if n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= scheduleQuietPeriod {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still receives events %v after its schedule was stopped (%d so far)", function, scheduleStopTimeout, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestScheduleRulesAPI(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ev := ts.eventsClient()
	ctx := t.Context()
	ts.createPy(t, "sched-target", "echo")

	put, err := ev.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("every-five"), ScheduleExpression: aws.String("rate(5 minutes)"),
		Description: aws.String("five minutes")})
	if err != nil {
		t.Fatalf("PutRule: %v", err)
	}
	if aws.ToString(put.RuleArn) != ruleARN("every-five") {
		t.Errorf("PutRule RuleArn = %q, want %s", aws.ToString(put.RuleArn), ruleARN("every-five"))
	}
	if _, err := ev.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("nightly"), ScheduleExpression: aws.String("cron(0 3 * * ? *)"),
		State: ebtypes.RuleStateDisabled}); err != nil {
		t.Fatalf("PutRule cron: %v", err)
	}
	describe := func(name string) *eventbridge.DescribeRuleOutput {
		t.Helper()
		out, err := ev.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(name)})
		if err != nil {
			t.Fatalf("DescribeRule %s: %v", name, err)
		}
		return out
	}
	d := describe("every-five")
	if aws.ToString(d.Name) != "every-five" || aws.ToString(d.Arn) != ruleARN("every-five") || aws.ToString(d.ScheduleExpression) != "rate(5 minutes)" ||
		d.State != ebtypes.RuleStateEnabled || aws.ToString(d.Description) != "five minutes" || aws.ToString(d.EventBusName) != "default" {
		t.Errorf("DescribeRule = %s", jsonOf(t, d))
	}
	if d := describe("nightly"); d.State != ebtypes.RuleStateDisabled || aws.ToString(d.ScheduleExpression) != "cron(0 3 * * ? *)" {
		t.Errorf("DescribeRule nightly = %s", jsonOf(t, d))
	}
	ruleNames := func(in *eventbridge.ListRulesInput) []string {
		t.Helper()
		out, err := ev.ListRules(ctx, in)
		if err != nil {
			t.Fatalf("ListRules: %v", err)
		}
		var names []string
		for _, r := range out.Rules {
			names = append(names, aws.ToString(r.Name))
		}
		return names
	}
	if got := ruleNames(&eventbridge.ListRulesInput{}); !slices.Equal(got, []string{"every-five", "nightly"}) {
		t.Errorf("ListRules = %q", got)
	}
	if got := ruleNames(&eventbridge.ListRulesInput{NamePrefix: aws.String("night")}); !slices.Equal(got, []string{"nightly"}) {
		t.Errorf("ListRules NamePrefix night = %q", got)
	}
	// Pages.
	if _, err := ev.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("zz-third"), ScheduleExpression: aws.String("rate(1 day)")}); err != nil {
		t.Fatal(err)
	}
	first, err := ev.ListRules(ctx, &eventbridge.ListRulesInput{Limit: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Rules) != 2 || aws.ToString(first.NextToken) == "" {
		t.Fatalf("ListRules Limit 2: %s", jsonOf(t, first))
	}
	if got := ruleNames(&eventbridge.ListRulesInput{Limit: aws.Int32(2), NextToken: first.NextToken}); !slices.Equal(got, []string{"zz-third"}) {
		t.Errorf("ListRules second page = %q, want zz-third", got)
	}
	if _, err := ev.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("zz-third")}); err != nil {
		t.Fatal(err)
	}

	// Enable and disable.
	if _, err := ev.DisableRule(ctx, &eventbridge.DisableRuleInput{Name: aws.String("every-five")}); err != nil {
		t.Fatalf("DisableRule: %v", err)
	}
	if d := describe("every-five"); d.State != ebtypes.RuleStateDisabled {
		t.Errorf("after DisableRule: State %q", d.State)
	}
	if _, err := ev.EnableRule(ctx, &eventbridge.EnableRuleInput{Name: aws.String("every-five")}); err != nil {
		t.Fatalf("EnableRule: %v", err)
	}
	if d := describe("every-five"); d.State != ebtypes.RuleStateEnabled {
		t.Errorf("after EnableRule: State %q", d.State)
	}
	_, err = ev.EnableRule(ctx, &eventbridge.EnableRuleInput{Name: aws.String("missing")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusBadRequest)
	// PutRule on an existing rule updates it.
	if _, err := ev.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("every-five"), ScheduleExpression: aws.String("rate(10 minutes)")}); err != nil {
		t.Fatal(err)
	}
	if d := describe("every-five"); aws.ToString(d.ScheduleExpression) != "rate(10 minutes)" {
		t.Errorf("after a second PutRule: ScheduleExpression %q", aws.ToString(d.ScheduleExpression))
	}

	// Invalid expressions, with EventBridge's message.
	for _, expr := range []string{"rate(0 minutes)", "rate(1 minutes)", "rate(5 minute)", "rate(-1 days)", "rate(5 fortnights)", "rate()",
		"cron(0 12 * * * *)", "cron(0 12 * *)", "cron(61 * * * ? *)", "cron(0 25 * * ? *)", "every 5 minutes", "cron(0 12 ? * MON#6 *)"} {
		_, err := ev.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("invalid"), ScheduleExpression: aws.String(expr)})
		if err == nil {
			t.Errorf("PutRule %q succeeded, want ValidationException", expr)
			continue
		}
		requireAPIError(t, err, "ValidationException", http.StatusBadRequest, "Parameter ScheduleExpression is not valid.")
	}
	if got := ruleNames(&eventbridge.ListRulesInput{NamePrefix: aws.String("invalid")}); len(got) != 0 {
		t.Errorf("a refused rule exists: %q", got)
	}

	// Targets.
	pt, err := ev.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("every-five"), Targets: []ebtypes.Target{
		{Id: aws.String("t1"), Arn: aws.String(functionARN("sched-target"))},
		{Id: aws.String("t2"), Arn: aws.String(functionARN("sched-target")), Input: aws.String(`{"a":1}`)},
	}})
	if err != nil {
		t.Fatalf("PutTargets: %v", err)
	}
	if pt.FailedEntryCount != 0 {
		t.Errorf("PutTargets: %d failed: %s", pt.FailedEntryCount, jsonOf(t, pt.FailedEntries))
	}
	pt, err = ev.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("every-five"), Targets: []ebtypes.Target{
		{Id: aws.String("bucket"), Arn: aws.String("arn:aws:s3:::some-bucket")},
	}})
	if err != nil {
		t.Fatalf("PutTargets (not a target Lamina delivers to): %v", err)
	}
	if pt.FailedEntryCount != 1 || len(pt.FailedEntries) != 1 || aws.ToString(pt.FailedEntries[0].TargetId) != "bucket" {
		t.Errorf("PutTargets of a bucket target: %s, want it failed", jsonOf(t, pt))
	}
	_, err = ev.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("missing"), Targets: []ebtypes.Target{
		{Id: aws.String("t1"), Arn: aws.String(functionARN("sched-target"))}}})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusBadRequest)
	targets := func(rule string) map[string]string {
		t.Helper()
		out, err := ev.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String(rule)})
		if err != nil {
			t.Fatalf("ListTargetsByRule %s: %v", rule, err)
		}
		m := map[string]string{}
		for _, tg := range out.Targets {
			m[aws.ToString(tg.Id)] = aws.ToString(tg.Arn) + " " + aws.ToString(tg.Input)
		}
		return m
	}
	if got := targets("every-five"); fmt.Sprint(got) != fmt.Sprint(map[string]string{
		"t1": functionARN("sched-target") + " ", "t2": functionARN("sched-target") + ` {"a":1}`}) {
		t.Errorf("ListTargetsByRule = %v", got)
	}
	rt, err := ev.RemoveTargets(ctx, &eventbridge.RemoveTargetsInput{Rule: aws.String("every-five"), Ids: []string{"t1", "nope"}})
	if err != nil {
		t.Fatalf("RemoveTargets: %v", err)
	}
	if rt.FailedEntryCount != 1 || len(rt.FailedEntries) != 1 || aws.ToString(rt.FailedEntries[0].TargetId) != "nope" {
		t.Errorf("RemoveTargets t1 and nope: %s, want nope failed", jsonOf(t, rt))
	}
	if got := targets("every-five"); len(got) != 1 || got["t2"] == "" {
		t.Errorf("ListTargetsByRule after RemoveTargets = %v, want t2", got)
	}

	// DeleteRule with targets needs Force.
	_, err = ev.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("every-five")})
	requireAPIError(t, err, "ValidationException", http.StatusBadRequest, "Rule can't be deleted since it has targets.")
	describe("every-five")
	if _, err := ev.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("every-five"), Force: true}); err != nil {
		t.Fatalf("DeleteRule Force: %v", err)
	}
	_, err = ev.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("every-five")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusBadRequest)
	if _, err := ev.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("nightly")}); err != nil {
		t.Errorf("DeleteRule of a rule without targets: %v", err)
	}
	if got := ruleNames(&eventbridge.ListRulesInput{}); len(got) != 0 {
		t.Errorf("ListRules after the deletions = %q", got)
	}

	// lamina schedule create / list / disable / enable / delete.
	stdout, stderr, code := ts.Run("schedule", "create", "cli-rule", "rate(1 hour)", "sched-target")
	if code != 0 || !strings.Contains(stdout, ruleARN("cli-rule")) {
		t.Fatalf("lamina schedule create: exit %d\n%s%s", code, stdout, stderr)
	}
	if d := describe("cli-rule"); aws.ToString(d.ScheduleExpression) != "rate(1 hour)" || d.State != ebtypes.RuleStateEnabled {
		t.Errorf("the rule lamina schedule create made: %s", jsonOf(t, d))
	}
	if got := targets("cli-rule"); len(got) != 1 || !strings.Contains(fmt.Sprint(got), functionARN("sched-target")) {
		t.Errorf("the targets lamina schedule create made: %v", got)
	}
	stdout, stderr, code = ts.Run("schedule", "list", "-o", "json")
	var listed []map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &listed) != nil || len(listed) != 1 || listed[0]["Name"] != "cli-rule" || listed[0]["ScheduleExpression"] != "rate(1 hour)" {
		t.Errorf("lamina schedule list -o json: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, _, code = ts.Run("schedule", "list")
	if code != 0 || !strings.Contains(stdout, "cli-rule") || !strings.Contains(stdout, functionARN("sched-target")) {
		t.Errorf("lamina schedule list: exit %d\n%s", code, stdout)
	}
	if _, stderr, code := ts.Run("schedule", "disable", "cli-rule"); code != 0 {
		t.Errorf("lamina schedule disable: %d %s", code, stderr)
	}
	if d := describe("cli-rule"); d.State != ebtypes.RuleStateDisabled {
		t.Errorf("after lamina schedule disable: State %q", d.State)
	}
	if _, stderr, code := ts.Run("schedule", "enable", "cli-rule"); code != 0 {
		t.Errorf("lamina schedule enable: %d %s", code, stderr)
	}
	if _, stderr, code := ts.Run("schedule", "delete", "cli-rule"); code != 0 {
		t.Errorf("lamina schedule delete: %d %s", code, stderr)
	}
	_, err = ev.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("cli-rule")})
	requireAPIError(t, err, "ResourceNotFoundException", http.StatusBadRequest)
	if _, _, code := ts.Run("schedule", "create", "bad-rule", "rate(1 hour)", "no-such-function"); code == 0 {
		t.Error("lamina schedule create for a missing function succeeded")
	}
	if _, _, code := ts.Run("schedule", "create", "bad-rule", "rate(1 hours)", "sched-target"); code == 0 {
		t.Error("lamina schedule create with an invalid expression succeeded")
	}
}

func TestScheduleFires(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--schedule-time-scale", scheduleTimeScale))
	ev := ts.eventsClient()
	ctx := t.Context()
	ts.createPy(t, "ticked", "echo")
	ts.createPy(t, "inputted", "echo")
	ts.createPy(t, "unpermitted", "echo")

	if _, err := ev.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("tick"), ScheduleExpression: aws.String("rate(1 minute)")}); err != nil {
		t.Fatal(err)
	}
	allowRule(t, ts.Lambda(), "ticked", ruleARN("tick"))
	// As on AWS, PutTargets takes a function whose policy does not let
	// EventBridge invoke it; its ticks then invoke nothing.
	if out, err := ev.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("tick"), Targets: []ebtypes.Target{
		{Id: aws.String("fn"), Arn: aws.String(functionARN("ticked"))},
		{Id: aws.String("unpermitted"), Arn: aws.String(functionARN("unpermitted"))}}}); err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutTargets: %v %v", out, err)
	}
	// A target with Input, made with the CLI.
	if stdout, stderr, code := ts.Run("schedule", "create", "with-input", "rate(1 minute)", "inputted", "--input", `{"custom":"input-42"}`); code != 0 {
		t.Fatalf("lamina schedule create --input: exit %d\n%s%s", code, stdout, stderr)
	}

	// The rule fires repeatedly with the Scheduled Event payload.
	saw := ts.waitSawEvents(t, "ticked", "three Scheduled Events", func(s []map[string]any) bool { return len(s) >= 3 })
	ids := map[string]bool{}
	for _, e := range saw {
		if e["detail-type"] != "Scheduled Event" || e["source"] != "aws.events" || jsonOf(t, e["resources"]) != `["`+ruleARN("tick")+`"]` ||
			e["account"] != testAccountID || e["region"] != testRegion || e["version"] != "0" || jsonOf(t, e["detail"]) != "{}" {
			t.Errorf("scheduled event %s, want a Scheduled Event of rule tick", jsonOf(t, e))
		}
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(e["time"])); err != nil {
			t.Errorf("scheduled event time %v: %v", e["time"], err)
		}
		id := fmt.Sprint(e["id"])
		if ids[id] {
			t.Errorf("two scheduled events with id %s", id)
		}
		ids[id] = true
	}
	if n := len(sawEvents(t, ts.functionLogEvents(t, ts.Logs(), "unpermitted"))); n != 0 {
		t.Errorf("a target without permission was invoked %d times", n)
	}
	if !strings.Contains(ts.Output(), "rule target not invoked") {
		t.Error("the server did not log the ticks that invoked nothing")
	}
	inputs := ts.waitSawEvents(t, "inputted", "two events with the target's Input", func(s []map[string]any) bool { return len(s) >= 2 })
	for _, e := range inputs {
		if jsonOf(t, e) != `{"custom":"input-42"}` {
			t.Errorf("the target with Input received %s, want its Input", jsonOf(t, e))
		}
	}

	// DisableRule stops the ticks: none due after it fires.
	if _, err := ev.DisableRule(ctx, &eventbridge.DisableRuleInput{Name: aws.String("tick")}); err != nil {
		t.Fatal(err)
	}
	disabled := time.Now()
	quiet := ts.waitScheduleQuiet(t, "ticked")
	for _, e := range sawEvents(t, ts.functionLogEvents(t, ts.Logs(), "ticked")) {
		// time is the tick's, to the second (rounded down).
		if tick, err := time.Parse(time.RFC3339, fmt.Sprint(e["time"])); err == nil && tick.After(disabled) {
			t.Errorf("a tick of %v fired after the rule was disabled at %v", tick, disabled.UTC())
		}
	}
	// EnableRule resumes them.
	if _, err := ev.EnableRule(ctx, &eventbridge.EnableRuleInput{Name: aws.String("tick")}); err != nil {
		t.Fatal(err)
	}
	enabled := time.Now().Truncate(time.Second)
	ts.waitSawEvents(t, "ticked", "a tick after EnableRule", func(s []map[string]any) bool {
		for _, e := range s[min(quiet, len(s)):] {
			if tick, err := time.Parse(time.RFC3339, fmt.Sprint(e["time"])); err == nil && !tick.Before(enabled) {
				return true
			}
		}
		return false
	})

	// lamina schedule delete stops the other.
	if _, stderr, code := ts.Run("schedule", "delete", "with-input"); code != 0 {
		t.Fatalf("lamina schedule delete: %d %s", code, stderr)
	}
	ts.waitScheduleQuiet(t, "inputted")
	if _, err := ev.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("tick"), Force: true}); err != nil {
		t.Fatal(err)
	}
	ts.waitScheduleQuiet(t, "ticked")
}

// A schedule is watched by polling its function's logs, as `lamina logs
// --follow` or a dashboard does: the Logs API must keep answering however
// often it is read.
func TestScheduleLogsPolledOften(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.createPy(t, "polled", "echo")
	ts.invokeOK(t, "polled", `{"n":1}`)
	ts.waitSawEvents(t, "polled", "the invocation's event", func(s []map[string]any) bool { return len(s) == 1 })
	logs := ts.Logs()
	const reads = 1100
	for i := range reads {
		_, err := logs.FilterLogEvents(context.Background(), &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/polled")})
		if err != nil {
			t.Fatalf("FilterLogEvents call %d of %d: %v", i+1, reads, err)
		}
	}
}

// TestScheduleSkipsMissedTicks: ticks due while the server was down are
// skipped and logged when it comes back, not fired in a burst.
func TestScheduleSkipsMissedTicks(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--schedule-time-scale", scheduleTimeScale))
	ev := ts.eventsClient()
	ctx := t.Context()
	ts.createPy(t, "ticked", "echo")
	if _, err := ev.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("tick"), ScheduleExpression: aws.String("rate(1 minute)")}); err != nil {
		t.Fatal(err)
	}
	allowRule(t, ts.Lambda(), "ticked", ruleARN("tick"))
	if out, err := ev.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("tick"), Targets: []ebtypes.Target{
		{Id: aws.String("fn"), Arn: aws.String(functionARN("ticked"))}}}); err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutTargets: %v %v", out, err)
	}
	ts.waitSawEvents(t, "ticked", "a first tick", func(s []map[string]any) bool { return len(s) >= 1 })

	ts.Stop()
	stopped := time.Now()
	time.Sleep(4 * time.Second) // several ticks of 0.6 s are missed
	restarted := time.Now()
	ts.Restart()
	ts.waitSawEvents(t, "ticked", "ticks after the restart", func(s []map[string]any) bool {
		n := 0
		for _, e := range s {
			if tick, err := time.Parse(time.RFC3339, fmt.Sprint(e["time"])); err == nil && !tick.Before(restarted.Truncate(time.Second)) {
				n++
			}
		}
		return n >= 2
	})
	for _, e := range sawEvents(t, ts.functionLogEvents(t, ts.Logs(), "ticked")) {
		tick, err := time.Parse(time.RFC3339, fmt.Sprint(e["time"]))
		if err == nil && tick.After(stopped.Add(time.Second)) && tick.Before(restarted.Add(-time.Second)) {
			t.Errorf("a tick of %v, due while the server was down (%v to %v), fired", tick, stopped.UTC(), restarted.UTC())
		}
	}
	if !strings.Contains(ts.Output(), "skipped") {
		t.Errorf("the server did not log the missed ticks:\n%s", ts.Output())
	}
}
