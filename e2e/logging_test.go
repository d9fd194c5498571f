package e2e

// Lambda's advanced logging controls end to end: LoggingConfig with the JSON
// log format, application and system log levels and a custom log group,
// with the Python and Node runtimes; the log group management of the Logs
// API with aws-sdk-go-v2 and boto3; StartLiveTail with aws-sdk-go-v2, boto3
// and the AWS CLI.

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// jsonLogApp logs through the logging module at every level and prints.
var jsonLogApp = map[string]string{"app.py": `import logging
logger = logging.getLogger("app")

def handler(event, context):
    logger.debug("debug from python")
    logger.info("info from python")
    logger.warning("warning from python")
    logger.error("error from python")
    print("print from python")
    return "ok"
`}

// jsonLogNodeApp logs through the console at every level.
var jsonLogNodeApp = map[string]string{"index.mjs": `export const handler = async () => {
  console.trace('trace from node');
  console.debug('debug from node');
  console.info('info from node');
  console.warn('warn from node');
  console.error('error from node');
  return 'ok';
};
`}

// groupEvents returns every event of a log group.
func (ts *testServer) groupEvents(t *testing.T, group string) []logtypes.FilteredLogEvent {
	t.Helper()
	var events []logtypes.FilteredLogEvent
	pages := cloudwatchlogs.NewFilterLogEventsPaginator(ts.Logs(), &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatalf("FilterLogEvents %s: %v", group, err)
		}
		events = append(events, page.Events...)
	}
	return events
}

// waitGroupEvents polls a log group until every one of want occurs in some
// event's message, and returns all its events.
func (ts *testServer) waitGroupEvents(t *testing.T, group string, want ...string) []logtypes.FilteredLogEvent {
	t.Helper()
	deadline := time.Now().Add(logsPollTimeout)
	for {
		events, err := ts.Logs().FilterLogEvents(context.Background(), &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group)})
		if err == nil && len(missingMessages(events.Events, want)) == 0 {
			return ts.groupEvents(t, group)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v log group %s still lacks %q (err %v)", logsPollTimeout, group, want, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jsonRecords decodes the events that are JSON objects.
func jsonRecords(events []logtypes.FilteredLogEvent) []map[string]any {
	var records []map[string]any
	for _, e := range events {
		var rec map[string]any
		if json.Unmarshal([]byte(aws.ToString(e.Message)), &rec) == nil {
			records = append(records, rec)
		}
	}
	return records
}

// recordWith returns the first record whose key has value.
func recordWith(records []map[string]any, key string, value any) map[string]any {
	for _, r := range records {
		if r[key] == value {
			return r
		}
	}
	return nil
}

func TestLoggingConfigJSON(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ctx := context.Background()
	lc := ts.Lambda()

	t.Run("python", func(t *testing.T) {
		const group = "/custom/python-json"
		out := ts.createFunction(t, "py-json", zipFiles(t, jsonLogApp), func(in *lambda.CreateFunctionInput) {
			in.LoggingConfig = &types.LoggingConfig{LogFormat: types.LogFormatJson, ApplicationLogLevel: types.ApplicationLogLevelWarn, LogGroup: aws.String(group)}
		})
		if c := out.LoggingConfig; c == nil || c.LogFormat != types.LogFormatJson || c.ApplicationLogLevel != types.ApplicationLogLevelWarn ||
			c.SystemLogLevel != types.SystemLogLevelInfo || aws.ToString(c.LogGroup) != group {
			t.Fatalf("CreateFunction LoggingConfig = %+v, want JSON, WARN, system INFO (the default), %s", c, group)
		}
		r := ts.invokeOK(t, "py-json", `{}`)
		events := ts.waitGroupEvents(t, group, "warning from python", `"platform.report"`)
		records := jsonRecords(events)
		warning := recordWith(records, "message", "warning from python")
		if warning == nil || warning["level"] != "WARNING" || warning["logger"] != "app" || warning["requestId"] != r.RequestID ||
			!strings.HasSuffix(warning["timestamp"].(string), "Z") {
			t.Errorf("the warning's record %v: want level WARNING, logger app, requestId %s, a UTC timestamp", warning, r.RequestID)
		}
		if recordWith(records, "message", "error from python") == nil {
			t.Errorf("the ERROR record is missing:\n%s", messagesText(events))
		}
		text := messagesText(events)
		for _, dropped := range []string{"debug from python", "info from python", "print from python", "START RequestId", "END RequestId", "REPORT RequestId"} {
			if strings.Contains(text, dropped) {
				t.Errorf("the log has %q, which the JSON format at WARN drops or replaces:\n%s", dropped, text)
			}
		}
		start, report := recordWith(records, "type", "platform.start"), recordWith(records, "type", "platform.report")
		if start == nil || report == nil {
			t.Fatalf("no platform.start or platform.report record:\n%s", text)
		}
		if rec := start["record"].(map[string]any); rec["requestId"] != r.RequestID || rec["version"] != "$LATEST" {
			t.Errorf("platform.start record %v", start)
		}
		rec := report["record"].(map[string]any)
		metrics, _ := rec["metrics"].(map[string]any)
		if rec["requestId"] != r.RequestID || rec["status"] != "success" || metrics["memorySizeMB"] != float64(128) ||
			metrics["durationMs"] == nil || metrics["billedDurationMs"] == nil || metrics["maxMemoryUsedMB"] == nil || metrics["initDurationMs"] == nil {
			t.Errorf("platform.report record %v", report)
		}
		if recordWith(records, "type", "platform.runtimeDone") != nil {
			t.Errorf("platform.runtimeDone (DEBUG) logged at SystemLogLevel INFO:\n%s", text)
		}
		// The default group has nothing of it.
		if _, err := ts.Logs().FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/py-json")}); err == nil {
			if events := ts.filterLogEvents(t, "py-json", ""); len(events) > 0 {
				t.Errorf("/aws/lambda/py-json has events:\n%s", messagesText(events))
			}
		}

		// Back to Text: the levels go, the group stays.
		upd, err := lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("py-json"),
			LoggingConfig: &types.LoggingConfig{LogFormat: types.LogFormatText}})
		if err != nil {
			t.Fatal(err)
		}
		if c := upd.LoggingConfig; c.LogFormat != types.LogFormatText || c.ApplicationLogLevel != "" || c.SystemLogLevel != "" || aws.ToString(c.LogGroup) != group {
			t.Errorf("after switching to Text, LoggingConfig = %+v", c)
		}
		ts.waitUpdated(t, "py-json")
		r = ts.invokeOK(t, "py-json", `{}`)
		ts.waitGroupEvents(t, group, "START RequestId: "+r.RequestID, "[WARNING]", "warning from python", "print from python")
	})

	t.Run("node at DEBUG", func(t *testing.T) {
		const group = "/custom/node-json"
		ts.createFunction(t, "node-json", zipFiles(t, jsonLogNodeApp), func(in *lambda.CreateFunctionInput) {
			in.Runtime = types.RuntimeNodejs20x
			in.Handler = aws.String("index.handler")
			in.LoggingConfig = &types.LoggingConfig{LogFormat: types.LogFormatJson, ApplicationLogLevel: types.ApplicationLogLevelDebug,
				SystemLogLevel: types.SystemLogLevelDebug, LogGroup: aws.String(group)}
		})
		r := ts.invokeOK(t, "node-json", `{}`)
		events := ts.waitGroupEvents(t, group, "error from node", `"platform.report"`)
		records := jsonRecords(events)
		for msg, level := range map[string]string{"debug from node": "DEBUG", "info from node": "INFO", "warn from node": "WARN", "error from node": "ERROR"} {
			rec := recordWith(records, "message", msg)
			if rec == nil || rec["level"] != level || rec["requestId"] != r.RequestID || rec["timestamp"] == nil {
				t.Errorf("record of %q: %v, want level %s and requestId %s", msg, rec, level, r.RequestID)
			}
		}
		if strings.Contains(messagesText(events), "trace from node") {
			t.Errorf("console.trace logged below DEBUG:\n%s", messagesText(events))
		}
		if done := recordWith(records, "type", "platform.runtimeDone"); done == nil {
			t.Errorf("no platform.runtimeDone record at SystemLogLevel DEBUG:\n%s", messagesText(events))
		}
	})

	t.Run("validation", func(t *testing.T) {
		_, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("bad-levels"), Runtime: types.RuntimePython312,
			Handler: aws.String("app.handler"), Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: zipFiles(t, jsonLogApp)},
			LoggingConfig: &types.LoggingConfig{LogFormat: types.LogFormatText, ApplicationLogLevel: types.ApplicationLogLevelDebug}})
		requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest, "LogFormat is JSON")
		_, err = lc.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("bad-group"), Runtime: types.RuntimePython312,
			Handler: aws.String("app.handler"), Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: zipFiles(t, jsonLogApp)},
			LoggingConfig: &types.LoggingConfig{LogGroup: aws.String("bad group!")}})
		requireAPIError(t, err, "ValidationException", http.StatusBadRequest, "loggingConfig.logGroup")
	})
}

// TestUnsupportedSettingsRefused: settings Lamina cannot honour are refused
// with InvalidParameterValueException naming why, never dropped; their
// empty forms, which tools send, are accepted.
func TestUnsupportedSettingsRefused(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ctx := context.Background()
	lc := ts.Lambda()
	for name, change := range map[string]func(*lambda.CreateFunctionInput){
		"VpcConfig": func(in *lambda.CreateFunctionInput) {
			in.VpcConfig = &types.VpcConfig{SubnetIds: []string{"subnet-1"}, SecurityGroupIds: []string{"sg-1"}}
		},
		"KMSKeyArn": func(in *lambda.CreateFunctionInput) {
			in.KMSKeyArn = aws.String("arn:aws:kms:us-east-1:123456789012:key/1")
		},
		"FileSystemConfigs": func(in *lambda.CreateFunctionInput) {
			in.FileSystemConfigs = []types.FileSystemConfig{{Arn: aws.String("arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-1"), LocalMountPath: aws.String("/mnt/x")}}
		},
		"SnapStart": func(in *lambda.CreateFunctionInput) {
			in.SnapStart = &types.SnapStart{ApplyOn: types.SnapStartApplyOnPublishedVersions}
		},
	} {
		in := &lambda.CreateFunctionInput{FunctionName: aws.String("refused"), Runtime: types.RuntimePython312, Handler: aws.String("app.handler"),
			Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: zipFiles(t, jsonLogApp)}}
		change(in)
		_, err := lc.CreateFunction(ctx, in)
		requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest, name+" ", "not supported")
	}
	ts.createFunction(t, "accepted", zipFiles(t, jsonLogApp), func(in *lambda.CreateFunctionInput) {
		in.VpcConfig = &types.VpcConfig{SubnetIds: []string{}, SecurityGroupIds: []string{}}
		in.SnapStart = &types.SnapStart{ApplyOn: types.SnapStartApplyOnNone}
	})
	_, err := lc.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("accepted"),
		KMSKeyArn: aws.String("arn:aws:kms:us-east-1:123456789012:key/1")})
	requireAPIError(t, err, "InvalidParameterValueException", http.StatusBadRequest, "KMSKeyArn")
}

func TestLogGroupManagement(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--sandbox", "process"))
	ctx := context.Background()
	logs := ts.Logs()
	const group = "/deploy/app"

	_, err := logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group), Tags: map[string]string{"team": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)})
	requireTyped[*logtypes.ResourceAlreadyExistsException](t, err)
	if _, err := logs.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String(group), RetentionInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	_, err = logs.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String(group), RetentionInDays: aws.Int32(8)})
	requireTyped[*logtypes.InvalidParameterException](t, err)
	described, err := logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/deploy/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(described.LogGroups) != 1 || aws.ToString(described.LogGroups[0].LogGroupName) != group ||
		aws.ToInt32(described.LogGroups[0].RetentionInDays) != 7 || aws.ToInt64(described.LogGroups[0].CreationTime) == 0 {
		t.Fatalf("DescribeLogGroups = %+v, want %s with retention 7 and a creation time", described.LogGroups, group)
	}
	arn := aws.ToString(described.LogGroups[0].LogGroupArn)

	// Tags, current and legacy.
	if _, err := logs.TagResource(ctx, &cloudwatchlogs.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"env": "test"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := logs.UntagResource(ctx, &cloudwatchlogs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := logs.ListTagsForResource(ctx, &cloudwatchlogs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil || len(tags.Tags) != 1 || tags.Tags["env"] != "test" {
		t.Errorf("ListTagsForResource = %v, %v; want env=test", tags, err)
	}
	if _, err := logs.TagLogGroup(ctx, &cloudwatchlogs.TagLogGroupInput{LogGroupName: aws.String(group), Tags: map[string]string{"legacy": "yes"}}); err != nil {
		t.Fatal(err)
	}
	legacy, err := logs.ListTagsLogGroup(ctx, &cloudwatchlogs.ListTagsLogGroupInput{LogGroupName: aws.String(group)})
	if err != nil || legacy.Tags["legacy"] != "yes" || legacy.Tags["env"] != "test" {
		t.Errorf("ListTagsLogGroup = %v, %v", legacy, err)
	}
	if _, err := logs.UntagLogGroup(ctx, &cloudwatchlogs.UntagLogGroupInput{LogGroupName: aws.String(group), Tags: []string{"legacy"}}); err != nil {
		t.Fatal(err)
	}

	// Streams and events of one's own.
	_, err = logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String("s1"),
		LogEvents: []logtypes.InputLogEvent{{Timestamp: aws.Int64(time.Now().UnixMilli()), Message: aws.String("x")}}})
	requireTyped[*logtypes.ResourceNotFoundException](t, err)
	if _, err := logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String("s1")}); err != nil {
		t.Fatal(err)
	}
	_, err = logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String("s1")})
	requireTyped[*logtypes.ResourceAlreadyExistsException](t, err)
	now := time.Now()
	put, err := logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String("s1"),
		LogEvents: []logtypes.InputLogEvent{
			{Timestamp: aws.Int64(now.Add(-8 * 24 * time.Hour).UnixMilli()), Message: aws.String("older than the retention")},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if put.RejectedLogEventsInfo == nil || aws.ToInt32(put.RejectedLogEventsInfo.ExpiredLogEventEndIndex) != 1 {
		t.Errorf("PutLogEvents rejected %+v, want the event past the retention expired", put.RejectedLogEventsInfo)
	}
	put, err = logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String("s1"),
		LogEvents: []logtypes.InputLogEvent{
			{Timestamp: aws.Int64(now.UnixMilli()), Message: aws.String("first line")},
			{Timestamp: aws.Int64(now.UnixMilli() + 1), Message: aws.String("second line")},
			{Timestamp: aws.Int64(now.Add(3 * time.Hour).UnixMilli()), Message: aws.String("from the future")},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if put.RejectedLogEventsInfo == nil || aws.ToInt32(put.RejectedLogEventsInfo.TooNewLogEventStartIndex) != 2 {
		t.Errorf("PutLogEvents rejected %+v, want the last event too new", put.RejectedLogEventsInfo)
	}
	_, err = logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String("s1"),
		LogEvents: []logtypes.InputLogEvent{{Timestamp: aws.Int64(now.UnixMilli()), Message: aws.String("b")}, {Timestamp: aws.Int64(now.UnixMilli() - 1000), Message: aws.String("a")}}})
	requireTyped[*logtypes.InvalidParameterException](t, err)
	events := ts.waitGroupEvents(t, group, "first line", "second line")
	if len(events) != 2 {
		t.Errorf("the group has %d events, want the 2 accepted:\n%s", len(events), messagesText(events))
	}
	streams, err := logs.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String(group)})
	if err != nil || len(streams.LogStreams) != 1 || aws.ToString(streams.LogStreams[0].LogStreamName) != "s1" {
		t.Errorf("DescribeLogStreams = %+v, %v", streams, err)
	}
	if _, err := logs.DeleteRetentionPolicy(ctx, &cloudwatchlogs.DeleteRetentionPolicyInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}

	// A function's default group can be created before its first log, as
	// deploy tools do, and then holds its logs.
	ts.createPy(t, "managed", "echo")
	if _, err := logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/aws/lambda/managed")}); err != nil {
		t.Fatal(err)
	}
	if _, err := logs.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String("/aws/lambda/managed"), RetentionInDays: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	r := ts.invokeOK(t, "managed", `{}`)
	ts.waitLogEvents(t, "managed", "REPORT RequestId: "+r.RequestID)

	if _, err := logs.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	_, err = logs.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String("s1")})
	requireTyped[*logtypes.ResourceNotFoundException](t, err)
	_, err = logs.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(group)})
	requireTyped[*logtypes.ResourceNotFoundException](t, err)
}

// liveTailClient is a Logs client whose connections all go to the server,
// whatever host the SDK's "stream-" prefix makes.
func (ts *testServer) liveTailClient() *cloudwatchlogs.Client {
	id, secret := ts.Credentials()
	dialer := &net.Dialer{}
	return cloudwatchlogs.New(cloudwatchlogs.Options{
		Region:       ts.region(),
		BaseEndpoint: aws.String(ts.Endpoint()),
		Credentials:  staticCredentials(id, secret),
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, ts.Addr())
		}}},
		RetryMaxAttempts: 1,
	})
}

func TestStartLiveTail(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withArgs("--sandbox", "process"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ts.createPy(t, "tailed", "echo")
	ts.invokeOK(t, "tailed", `{"before":"the session"}`)
	ts.waitLogEvents(t, "tailed", "before")

	out, err := ts.liveTailClient().StartLiveTail(ctx, &cloudwatchlogs.StartLiveTailInput{
		LogGroupIdentifiers: []string{"arn:aws:logs:" + testRegion + ":" + testAccountID + ":log-group:/aws/lambda/tailed"}})
	if err != nil {
		t.Fatal(err)
	}
	stream := out.GetStream()
	defer stream.Close()
	var started bool
	var invoked string
	var seen []string
	for ev := range stream.Events() {
		switch v := ev.(type) {
		case *logtypes.StartLiveTailResponseStreamMemberSessionStart:
			started = true
			if aws.ToString(v.Value.SessionId) == "" {
				t.Errorf("sessionStart without a session ID: %+v", v.Value)
			}
			invoked = ts.invokeOK(t, "tailed", `{"during":"the session"}`).RequestID
		case *logtypes.StartLiveTailResponseStreamMemberSessionUpdate:
			for _, r := range v.Value.SessionResults {
				msg := aws.ToString(r.Message)
				seen = append(seen, msg)
				if strings.Contains(msg, "before") {
					t.Errorf("live tail sent an event from before the session: %s", msg)
				}
				if !strings.HasSuffix(aws.ToString(r.LogGroupIdentifier), ":log-group:/aws/lambda/tailed") || aws.ToInt64(r.Timestamp) == 0 {
					t.Errorf("result %+v", r)
				}
			}
		}
		if invoked != "" && slices.ContainsFunc(seen, func(s string) bool { return strings.HasPrefix(s, "REPORT RequestId: "+invoked) }) {
			break
		}
	}
	if !started || !slices.ContainsFunc(seen, func(s string) bool { return strings.Contains(s, `"during": "the session"`) }) {
		t.Fatalf("live tail (started %v) saw %q; want the invocation's log (err %v)", started, seen, stream.Err())
	}

	_, err = ts.liveTailClient().StartLiveTail(ctx, &cloudwatchlogs.StartLiveTailInput{LogGroupIdentifiers: []string{"/aws/lambda/missing"}})
	requireTyped[*logtypes.ResourceNotFoundException](t, err)

	t.Run("aws cli", func(t *testing.T) {
		// The AWS CLI v1 (with boto3) has start-live-tail; it prints each
		// event as it comes.
		home, _ := os.UserHomeDir()
		bin := filepath.Join(home, ".pyenv/versions/3.11.7/bin/aws")
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("no AWS CLI with start-live-tail at %s", bin)
		}
		id, secret := ts.Credentials()
		cmd := exec.CommandContext(ctx, bin, "logs", "start-live-tail", "--log-group-identifiers", "/aws/lambda/tailed",
			"--endpoint-url", ts.Endpoint(), "--region", testRegion, "--output", "json")
		cmd.Env = append(hermeticEnv(), "HOME="+t.TempDir(), "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret,
			"AWS_DISABLE_HOST_PREFIX_INJECTION=true", "AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		// The CLI prints the messages of events only: invoke until they
		// come (the session may start after the first invocation).
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				if _, err := ts.tryInvoke(t, "tailed", `{"from":"the cli"}`); err != nil {
					return
				}
				select {
				case <-done:
					return
				case <-time.After(time.Second):
				}
			}
		}()
		lines := bufio.NewScanner(stdout)
		lines.Buffer(nil, 1<<20)
		var text string
		for lines.Scan() {
			text += lines.Text() + "\n"
			if strings.Contains(text, `"from": "the cli"`) && strings.Contains(text, "REPORT RequestId: ") {
				return
			}
		}
		t.Fatalf("aws logs start-live-tail printed:\n%s\nstderr:\n%s", text, stderr.String())
	})
}

// TestLogsBoto3 manages a log group, writes to it and tails it with boto3
// (host prefix injection off: the "streaming-" host is the server's own
// name, which only the operator's DNS can point at it).
func TestLogsBoto3(t *testing.T) {
	t.Parallel()
	py := boto3Python(t)
	ts := startServer(t, withArgs("--sandbox", "process"))
	id, secret := ts.Credentials()
	cmd := exec.Command(py, "-c", boto3LogsScript)
	cmd.Env = append(hermeticEnv(), "HOME="+t.TempDir(), "ENDPOINT="+ts.Endpoint(), "REGION="+testRegion,
		"AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_MAX_ATTEMPTS=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "boto3 logs OK") {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
}

const boto3LogsScript = `
import os, threading, time, boto3, botocore.config
cfg = botocore.config.Config(inject_host_prefix=False)
logs = boto3.client("logs", endpoint_url=os.environ["ENDPOINT"], region_name=os.environ["REGION"], config=cfg)
logs.create_log_group(logGroupName="/py/app", tags={"k": "v"})
logs.put_retention_policy(logGroupName="/py/app", retentionInDays=14)
g = logs.describe_log_groups(logGroupNamePrefix="/py/")["logGroups"]
assert len(g) == 1 and g[0]["retentionInDays"] == 14, g
assert logs.list_tags_log_group(logGroupName="/py/app")["tags"] == {"k": "v"}
logs.create_log_stream(logGroupName="/py/app", logStreamName="worker-1")
try:
    logs.create_log_group(logGroupName="/py/app")
    raise SystemExit("created twice")
except logs.exceptions.ResourceAlreadyExistsException:
    pass

def put():
    time.sleep(1.5)
    logs.put_log_events(logGroupName="/py/app", logStreamName="worker-1",
        logEvents=[{"timestamp": int(time.time() * 1000), "message": "tailed by boto3"}])

tail = logs.start_live_tail(logGroupIdentifiers=["/py/app"])
threading.Thread(target=put, daemon=True).start()
found = False
for event in tail["responseStream"]:
    if "sessionUpdate" in event:
        for r in event["sessionUpdate"]["sessionResults"]:
            if r["message"] == "tailed by boto3" and r["logStreamName"] == "worker-1":
                found = True
    if found:
        break
tail["responseStream"].close()
assert found
ev = logs.get_log_events(logGroupName="/py/app", logStreamName="worker-1")["events"]
assert [e["message"] for e in ev] == ["tailed by boto3"], ev
logs.delete_log_group(logGroupName="/py/app")
print("boto3 logs OK")
`
