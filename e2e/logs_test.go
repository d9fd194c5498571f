package e2e

// Functions' logs end to end: the CloudWatch Logs API subset
// (FilterLogEvents, GetLogEvents, DescribeLogGroups, DescribeLogStreams)
// with aws-sdk-go-v2's cloudwatchlogs client, durability across restarts,
// and the CLI's `lamina invoke` and `lamina logs`.

import (
	"bufio"
	"context"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
)

func TestLogsAPI(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ctx := context.Background()
	logs := ts.Logs()
	ts.createPy(t, "logged", "echo")
	ts.createPy(t, "other", "echo")

	var ids []string
	for i := range 3 {
		r := ts.invokeOK(t, "logged", `{"line":`+strconv.Itoa(i)+`}`)
		ids = append(ids, r.RequestID)
	}
	other := ts.invokeOK(t, "other", `{"other":true}`)

	var want []string
	for i, id := range ids {
		want = append(want, "START RequestId: "+id+" Version: $LATEST", "END RequestId: "+id, "REPORT RequestId: "+id+"\t",
			`python saw {"line": `+strconv.Itoa(i)+`}`)
	}
	events := ts.waitLogEvents(t, "logged", want...)
	ts.waitLogEvents(t, "other", "REPORT RequestId: "+other.RequestID)
	stream := aws.ToString(events[0].LogStreamName)

	t.Run("FilterLogEvents", func(t *testing.T) {
		if n := countMessages(events, "START RequestId: "); n != 3 {
			t.Errorf("%d START lines, want 3:\n%s", n, messagesText(events))
		}
		if n := countMessages(events, "INIT_START "); n != 1 {
			t.Errorf("%d INIT_START lines for one cold and two warm calls, want 1:\n%s", n, messagesText(events))
		}
		if missing := missingMessages(events, []string{other.RequestID, `"other": true`}); len(missing) < 2 {
			t.Errorf("the log group of logged has events of other:\n%s", messagesText(events))
		}
		// One environment served the three calls: one stream.
		streams := map[string]bool{}
		for i, e := range events {
			streams[aws.ToString(e.LogStreamName)] = true
			if aws.ToInt64(e.Timestamp) == 0 || aws.ToString(e.EventId) == "" || aws.ToInt64(e.IngestionTime) == 0 {
				t.Errorf("event %d lacks timestamp, eventId or ingestionTime: %+v", i, e)
			}
		}
		if len(streams) != 1 {
			t.Errorf("events are in %d streams, want 1: %v", len(streams), streams)
		}
		if !logStreamRE.MatchString(stream) {
			t.Errorf("log stream %q does not match %s", stream, logStreamRE)
		}
		// The REPORT lines are the platform's format; the messages carry no
		// trailing newline.
		for _, e := range events {
			msg := aws.ToString(e.Message)
			if strings.HasSuffix(msg, "\n") {
				t.Errorf("message ends with a newline: %q", msg)
			}
			if strings.HasPrefix(msg, "REPORT ") {
				parseReport(t, msg)
			}
		}
		// Order within an invocation: START, output, END, REPORT.
		for _, id := range ids {
			var seq []string
			for _, e := range events {
				msg := aws.ToString(e.Message)
				switch {
				case strings.HasPrefix(msg, "START RequestId: "+id):
					seq = append(seq, "START")
				case strings.HasPrefix(msg, "END RequestId: "+id):
					seq = append(seq, "END")
				case strings.HasPrefix(msg, "REPORT RequestId: "+id):
					seq = append(seq, "REPORT")
				case strings.Contains(msg, "\t"+id+"\tlogged warning"):
					seq = append(seq, "output")
				}
			}
			if want := []string{"START", "output", "END", "REPORT"}; !slices.Equal(seq, want) {
				t.Errorf("events of %s come in the order %v, want %v", id, seq, want)
			}
		}
	})

	t.Run("filterPattern", func(t *testing.T) {
		reports := ts.filterLogEvents(t, "logged", "REPORT")
		if len(reports) != 3 {
			t.Errorf("filterPattern REPORT: %d events, want 3:\n%s", len(reports), messagesText(reports))
		}
		for _, e := range reports {
			if !strings.HasPrefix(aws.ToString(e.Message), "REPORT RequestId: ") {
				t.Errorf("filterPattern REPORT matched %q", aws.ToString(e.Message))
			}
		}
		one := ts.filterLogEvents(t, "logged", `"RequestId: `+ids[1]+`"`)
		if len(one) != 3 { // START, END, REPORT
			t.Errorf("filterPattern for one request id: %d events, want START, END, REPORT:\n%s", len(one), messagesText(one))
		}
		both := ts.filterLogEvents(t, "logged", `saw "2}"`)
		if len(both) != 1 || !strings.Contains(aws.ToString(both[0].Message), `python saw {"line": 2}`) {
			t.Errorf("filterPattern with two terms: %d events:\n%s", len(both), messagesText(both))
		}
		if none := ts.filterLogEvents(t, "logged", "no-such-text-anywhere"); len(none) != 0 {
			t.Errorf("a pattern matching nothing returned %d events", len(none))
		}
	})

	t.Run("FilterLogEvents paging and ranges", func(t *testing.T) {
		var all []string
		for _, e := range events {
			all = append(all, aws.ToString(e.EventId))
		}
		// Pages of 2 events, followed by nextToken, give the same events.
		var paged []string
		tooMany := false
		pages := cloudwatchlogs.NewFilterLogEventsPaginator(logs, &cloudwatchlogs.FilterLogEventsInput{
			LogGroupName: aws.String("/aws/lambda/logged"), Limit: aws.Int32(2)})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Events) > 2 && !tooMany {
				tooMany = true
				t.Errorf("FilterLogEvents with Limit 2 returned a page of %d events", len(page.Events))
			}
			for _, e := range page.Events {
				paged = append(paged, aws.ToString(e.EventId))
			}
		}
		if !slices.Equal(paged, all) {
			t.Errorf("FilterLogEvents in pages of 2 returned event ids\n%q\nwant\n%q", paged, all)
		}
		lastTs := aws.ToInt64(events[len(events)-1].Timestamp)
		out, err := logs.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{
			LogGroupName: aws.String("/aws/lambda/logged"), StartTime: aws.Int64(lastTs + 1)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Events) != 0 {
			t.Errorf("startTime after the last event: %d events", len(out.Events))
		}
		out, err = logs.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{
			LogGroupName: aws.String("/aws/lambda/logged"), EndTime: aws.Int64(aws.ToInt64(events[0].Timestamp) - 1)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Events) != 0 {
			t.Errorf("endTime before the first event: %d events", len(out.Events))
		}
		out, err = logs.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{
			LogGroupName: aws.String("/aws/lambda/logged"), LogStreamNames: []string{"2020/01/01/[$LATEST]00000000000000000000000000000000"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Events) != 0 {
			t.Errorf("logStreamNames of another stream: %d events", len(out.Events))
		}
		out, err = logs.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{
			LogGroupName: aws.String("/aws/lambda/logged"), LogStreamNames: []string{stream}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Events) != len(events) {
			t.Errorf("logStreamNames of the one stream: %d events, want %d", len(out.Events), len(events))
		}
	})

	t.Run("DescribeLogStreams and GetLogEvents", func(t *testing.T) {
		out, err := logs.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/aws/lambda/logged")})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.LogStreams) != 1 || aws.ToString(out.LogStreams[0].LogStreamName) != stream {
			t.Fatalf("DescribeLogStreams: %d streams, want the one stream %q: %+v", len(out.LogStreams), stream, out.LogStreams)
		}
		got, err := logs.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{
			LogGroupName:  aws.String("/aws/lambda/logged"),
			LogStreamName: out.LogStreams[0].LogStreamName,
			StartFromHead: aws.Bool(true),
		})
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for _, e := range got.Events {
			msgs = append(msgs, aws.ToString(e.Message))
		}
		var filtered []string
		for _, e := range events {
			filtered = append(filtered, aws.ToString(e.Message))
		}
		if !slices.Equal(msgs, filtered) {
			t.Errorf("GetLogEvents of the stream:\n%q\nwant the events FilterLogEvents returned:\n%q", msgs, filtered)
		}
		if aws.ToString(got.NextForwardToken) == "" {
			t.Errorf("GetLogEvents: no nextForwardToken")
		}
		// The forward token continues after the last event: nothing new yet.
		more, err := logs.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{
			LogGroupName:  aws.String("/aws/lambda/logged"),
			LogStreamName: out.LogStreams[0].LogStreamName,
			NextToken:     got.NextForwardToken,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(more.Events) != 0 {
			t.Errorf("GetLogEvents after the forward token returned %d old events", len(more.Events))
		}
		if tok := aws.ToString(more.NextForwardToken); tok != aws.ToString(got.NextForwardToken) {
			t.Errorf("GetLogEvents at the end of the stream: nextForwardToken %q, want the token it was given, %q", tok, aws.ToString(got.NextForwardToken))
		}
		// Pages of 3 events, following the forward token until it stays the
		// same (the AWS CLI's get-log-events loop), give the same events.
		var paged []string
		var tokens []string
		var token *string
		tooMany := false
		for range 3 * len(filtered) {
			page, err := logs.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{
				LogGroupName:  aws.String("/aws/lambda/logged"),
				LogStreamName: out.LogStreams[0].LogStreamName,
				StartFromHead: aws.Bool(true),
				Limit:         aws.Int32(3),
				NextToken:     token,
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Events) > 3 && !tooMany {
				tooMany = true
				t.Errorf("GetLogEvents with Limit 3 (token %q) returned %d events", aws.ToString(token), len(page.Events))
			}
			for _, e := range page.Events {
				paged = append(paged, aws.ToString(e.Message))
			}
			tokens = append(tokens, aws.ToString(page.NextForwardToken))
			if token != nil && aws.ToString(page.NextForwardToken) == *token {
				break
			}
			token = page.NextForwardToken
		}
		if !slices.Equal(paged, filtered) {
			t.Errorf("GetLogEvents in pages of 3 following nextForwardToken (tokens %q…) returned %d events, want the stream's %d once each", tokens[:min(6, len(tokens))], len(paged), len(filtered))
		}
	})

	t.Run("DescribeLogGroups", func(t *testing.T) {
		out, err := logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, g := range out.LogGroups {
			names = append(names, aws.ToString(g.LogGroupName))
		}
		if !slices.Contains(names, "/aws/lambda/logged") || !slices.Contains(names, "/aws/lambda/other") {
			t.Errorf("DescribeLogGroups = %q, want /aws/lambda/logged and /aws/lambda/other", names)
		}
		out, err = logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/aws/lambda/log")})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.LogGroups) != 1 || aws.ToString(out.LogGroups[0].LogGroupName) != "/aws/lambda/logged" {
			t.Errorf("DescribeLogGroups with prefix /aws/lambda/log: %+v", out.LogGroups)
		}
	})

	t.Run("missing log group", func(t *testing.T) {
		for _, group := range []string{"/aws/lambda/no-such-function", "/not/lambda"} {
			_, err := logs.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group)})
			requireAPIError(t, err, "ResourceNotFoundException", http.StatusBadRequest)
			requireTyped[*logtypes.ResourceNotFoundException](t, err)
			_, err = logs.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String(group)})
			requireTyped[*logtypes.ResourceNotFoundException](t, err)
			_, err = logs.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream)})
			requireTyped[*logtypes.ResourceNotFoundException](t, err)
		}
	})
}

func TestLogsSurviveRestart(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.createPy(t, "durable", "echo")

	first := ts.invokeOK(t, "durable", `{"when":"before"}`)
	ts.waitLogEvents(t, "durable", "REPORT RequestId: "+first.RequestID)
	// Logged right before a graceful stop: flushed on the way out.
	last := ts.invokeOK(t, "durable", `{"when":"just before the stop"}`)
	ts.Restart()

	events := ts.waitLogEvents(t, "durable",
		"START RequestId: "+first.RequestID, "REPORT RequestId: "+first.RequestID, `python saw {"when": "before"}`,
		"REPORT RequestId: "+last.RequestID, `python saw {"when": "just before the stop"}`)
	if n := countMessages(events, "START RequestId: "); n != 2 {
		t.Errorf("%d START lines after the restart, want 2:\n%s", n, messagesText(events))
	}

	// New invocations after the restart add to the same group.
	after := ts.invokeOK(t, "durable", `{"when":"after"}`)
	if !after.cold(t) {
		t.Errorf("the first call after a restart is not a cold start")
	}
	events = ts.waitLogEvents(t, "durable", "REPORT RequestId: "+after.RequestID)
	if n := countMessages(events, "START RequestId: "); n != 3 {
		t.Errorf("%d START lines, want 3:\n%s", n, messagesText(events))
	}

	// Events once visible survive a crash of the server too.
	ts.Kill()
	ts.Restart()
	events = ts.waitLogEvents(t, "durable", "REPORT RequestId: "+first.RequestID, "REPORT RequestId: "+last.RequestID, "REPORT RequestId: "+after.RequestID)
	if n := countMessages(events, "START RequestId: "); n != 3 {
		t.Errorf("%d START lines after a kill and restart, want 3:\n%s", n, messagesText(events))
	}
}

func TestCLIInvokeAndLogs(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.createPy(t, "cli-echo", "echo")
	ts.createPy(t, "cli-fail", "fail")

	stdout, stderr, code := ts.Run("invoke", "cli-echo", `{"a":1}`)
	requireOK(t, "lamina invoke", stdout, stderr, code)
	m := decodeObject(t, stdout)
	if got := m["echo"]; got == nil || got.(map[string]any)["a"] != 1.0 {
		t.Errorf("lamina invoke printed %q, want the result with echo {\"a\":1}", stdout)
	}
	if strings.Contains(stderr, "START RequestId") {
		t.Errorf("lamina invoke without --logs printed the log:\n%s", stderr)
	}

	stdout, stderr, code = ts.Run("invoke", "cli-echo", `{"b":2}`, "--logs")
	requireOK(t, "lamina invoke --logs", stdout, stderr, code)
	if m := decodeObject(t, stdout); m["echo"].(map[string]any)["b"] != 2.0 {
		t.Errorf("lamina invoke --logs printed %q on stdout", stdout)
	}
	for _, want := range []string{"START RequestId: ", "END RequestId: ", "REPORT RequestId: ", `python saw {"b": 2}`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("lamina invoke --logs: stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stdout, "START RequestId") {
		t.Errorf("lamina invoke --logs printed the log on stdout:\n%s", stdout)
	}

	stdout, stderr, code = ts.Run("invoke", "cli-fail", `{"why":"cli"}`)
	if code == 0 {
		t.Errorf("lamina invoke of a failing function exited 0")
	}
	if !strings.Contains(stdout, `"errorType": "ValueError"`) && !strings.Contains(stdout, `"errorType":"ValueError"`) {
		t.Errorf("lamina invoke of a failing function: stdout %q, want the error payload", stdout)
	}
	if !strings.Contains(stderr, "Unhandled") {
		t.Errorf("lamina invoke of a failing function: stderr %q does not say the function failed", stderr)
	}

	stdout, stderr, code = ts.Run("invoke", "no-such-function", `{}`)
	requireCLIError(t, "lamina invoke of a missing function", stdout, stderr, code, "ResourceNotFoundException")

	// lamina logs: the REPORT lines of both invocations (stored
	// asynchronously, so poll).
	deadline := time.Now().Add(logsPollTimeout)
	for {
		stdout, stderr, code = ts.Run("logs", "cli-echo")
		requireOK(t, "lamina logs", stdout, stderr, code)
		if strings.Count(stdout, "REPORT RequestId: ") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lamina logs did not show 2 REPORT lines within %v:\n%s", logsPollTimeout, stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{"START RequestId: ", "END RequestId: ", `python saw {"a": 1}`, `python saw {"b": 2}`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("lamina logs lacks %q:\n%s", want, stdout)
		}
	}
	stdout, stderr, code = ts.Run("logs", "cli-echo", "--filter", "REPORT")
	requireOK(t, "lamina logs --filter", stdout, stderr, code)
	if ls := lines(stdout); len(ls) != 2 || !strings.Contains(ls[0], "REPORT RequestId: ") || !strings.Contains(ls[1], "REPORT RequestId: ") {
		t.Errorf("lamina logs --filter REPORT printed:\n%s", stdout)
	}
	stdout, stderr, code = ts.Run("logs", "cli-echo", "--since", "1ms")
	requireOK(t, "lamina logs --since 1ms", stdout, stderr, code)
	if strings.Contains(stdout, "RequestId") {
		t.Errorf("lamina logs --since 1ms printed older events:\n%s", stdout)
	}
	stdout, stderr, code = ts.Run("logs", "no-such-function")
	requireCLIError(t, "lamina logs of a missing function", stdout, stderr, code, "ResourceNotFoundException")

	// lamina logs --follow prints events of invocations made after it
	// started, until it is stopped.
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, laminaBin, "logs", "cli-echo", "--follow")
	cmd.Env = append(hermeticEnv(), "LAMINA_ENDPOINT="+ts.Endpoint(), "HOME="+ts.home)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut syncBuffer
	cmd.Stderr = &errOut
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	followed := make(chan string, 1000)
	go func() {
		defer close(followed)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			followed <- sc.Text()
		}
	}()
	r := ts.invokeOK(t, "cli-echo", `{"followed":true}`)
	var got []string
	timeout := time.After(logsPollTimeout)
wait:
	for {
		select {
		case l, ok := <-followed:
			if !ok {
				t.Fatalf("lamina logs --follow exited; it printed:\n%s\nstderr:\n%s", strings.Join(got, "\n"), errOut.String())
			}
			got = append(got, l)
			if strings.Contains(l, "REPORT RequestId: "+r.RequestID) {
				break wait
			}
		case <-timeout:
			t.Fatalf("lamina logs --follow did not show the REPORT of %s within %v; it printed:\n%s", r.RequestID, logsPollTimeout, strings.Join(got, "\n"))
		}
	}
	if !strings.Contains(strings.Join(got, "\n"), `python saw {"followed": true}`) {
		t.Errorf("lamina logs --follow did not show the function's output:\n%s", strings.Join(got, "\n"))
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// decodeObject decodes CLI output as one JSON object.
func decodeObject(t *testing.T, s string) map[string]any {
	t.Helper()
	return invokeResult{Payload: []byte(strings.TrimSpace(s))}.object(t)
}
