package frontend

import (
	"cmp"
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"unicode"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/logs"
)

// The subset of the CloudWatch Logs API (JSON 1.1, service "logs") that
// reads functions' logs, so that `aws logs tail /aws/lambda/NAME --follow`
// and the SDKs' FilterLogEvents work against Lamina, and manages log groups
// as deploy tools do (CreateLogGroup, retention, tags, CreateLogStream,
// PutLogEvents), and StartLiveTail. A function's logs go to its
// LoggingConfig.LogGroup, /aws/lambda/NAME unless set.

// logsService is the Logs subset on its wire protocol.
func (f *Frontend) logsService() *awsproto.Service {
	s := &awsproto.Service{SigningName: serviceLogs, TargetPrefix: "Logs_20140328", JSONVersion: "1.1"}
	for name, handle := range map[string]func(*request) error{
		"FilterLogEvents":       f.filterLogEvents,
		"GetLogEvents":          f.getLogEvents,
		"DescribeLogGroups":     f.describeLogGroups,
		"DescribeLogStreams":    f.describeLogStreams,
		"CreateLogGroup":        f.createLogGroup,
		"DeleteLogGroup":        f.deleteLogGroup,
		"PutRetentionPolicy":    f.putRetentionPolicy,
		"DeleteRetentionPolicy": f.deleteRetentionPolicy,
		"CreateLogStream":       f.createLogStream,
		"PutLogEvents":          f.putLogEvents,
		"TagResource":           f.tagLogResource,
		"UntagResource":         f.untagLogResource,
		"ListTagsForResource":   f.listTagsForLogResource,
		"TagLogGroup":           f.tagLogGroup,
		"UntagLogGroup":         f.untagLogGroup,
		"ListTagsLogGroup":      f.listTagsLogGroup,
		"StartLiveTail":         f.startLiveTail,
	} {
		s.Handle(targetOperation(name, handle))
	}
	return s
}

// logGroupInput names a log group by name or identifier (name or ARN).
type logGroupInput struct {
	LogGroupName       string `json:"logGroupName"`
	LogGroupIdentifier string `json:"logGroupIdentifier"`
}

// group returns the name of the log group the input names.
func (in *logGroupInput) group() (string, error) {
	group := in.LogGroupName
	if group == "" {
		group = groupFromIdentifier(in.LogGroupIdentifier)
	}
	if group == "" {
		return "", logsValidation("Either logGroupName or logGroupIdentifier must be given.")
	}
	return group, nil
}

// groupFromIdentifier returns the log group a name or ARN names.
func groupFromIdentifier(id string) string {
	if i := strings.Index(id, ":log-group:"); i >= 0 {
		return strings.TrimSuffix(id[i+len(":log-group:"):], ":*")
	}
	return id
}

func logGroupNotFound() error {
	return &lamina.Error{Status: http.StatusBadRequest, Code: "ResourceNotFoundException", Message: "The specified log group does not exist."}
}

func logsValidation(msg string) error {
	return &lamina.Error{Status: http.StatusBadRequest, Code: "InvalidParameterException", Message: msg}
}

// logsLimit is CloudWatch Logs' error for a bound reached.
func logsLimit(msg string) error {
	return &lamina.Error{Status: http.StatusBadRequest, Code: "LimitExceededException", Message: msg}
}

// logGroupNamer is a Logs request that names a log group.
type logGroupNamer interface {
	group() (string, error)
}

// openLogGroup decodes a Logs request into in and returns the log group it
// names, which must exist.
func (f *Frontend) openLogGroup(rq *request, in logGroupNamer) (string, error) {
	if err := rq.decode(in); err != nil {
		return "", err
	}
	group, err := in.group()
	if err != nil {
		return "", err
	}
	return group, f.checkLogGroup(rq.r.Context(), group, true)
}

// checkLogGroup fails when a log group does not exist: it exists once
// created or written to; for reading, a function's default group exists
// as long as the function does.
func (f *Frontend) checkLogGroup(ctx context.Context, group string, reading bool) error {
	if _, err := f.logs.Group(ctx, group); err == nil {
		return nil
	}
	if name, ok := strings.CutPrefix(group, "/aws/lambda/"); ok && reading && lamina.ValidFunctionName(name) {
		if _, err := f.store.GetFunction(ctx, name); err == nil {
			return nil
		}
	}
	groups, err := f.logs.GroupsWithEvents(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(groups, group) {
		return nil
	}
	return logGroupNotFound()
}

// logGroupARN is the ARN of a log group, without the ":*" that Describe
// calls add.
func (f *Frontend) logGroupARN(group string) string {
	return "arn:aws:logs:" + f.cfg.Region + ":" + f.cfg.AccountID + ":log-group:" + group
}

type filterLogEventsInput struct {
	logGroupInput
	LogStreamNames      []string `json:"logStreamNames"`
	LogStreamNamePrefix string   `json:"logStreamNamePrefix"`
	StartTime           int64    `json:"startTime"`
	EndTime             int64    `json:"endTime"`
	FilterPattern       string   `json:"filterPattern"`
	NextToken           string   `json:"nextToken"`
	Limit               int      `json:"limit"`
}

type filteredLogEvent struct {
	LogStreamName string `json:"logStreamName"`
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
	EventID       string `json:"eventId"`
}

type filterLogEventsOutput struct {
	Events    []filteredLogEvent `json:"events"`
	NextToken string             `json:"nextToken,omitempty"`
}

func (f *Frontend) filterLogEvents(rq *request) error {
	var in filterLogEventsInput
	group, err := f.openLogGroup(rq, &in)
	if err != nil {
		return err
	}
	q := logs.Query{Group: group, Start: in.StartTime, End: in.EndTime, Streams: in.LogStreamNames,
		Prefix: in.LogStreamNamePrefix, Terms: patternTerms(in.FilterPattern), Limit: in.Limit}
	if q.After, err = parseToken(in.NextToken); err != nil {
		return err
	}
	page, err := f.logs.Read(rq.r.Context(), q)
	if err != nil {
		return err
	}
	out := filterLogEventsOutput{Events: make([]filteredLogEvent, len(page.Events))}
	for i, e := range page.Events {
		out.Events[i] = filteredLogEvent{LogStreamName: e.Stream, Timestamp: e.Timestamp, Message: e.Message,
			IngestionTime: e.IngestionTime, EventID: e.ID}
	}
	if !page.Next.IsZero() {
		out.NextToken = page.Next.String()
	}
	return rq.json(http.StatusOK, out)
}

// patternTerms reads a CloudWatch filter pattern of plain terms and quoted
// phrases, all of which an event must contain. An empty pattern matches
// everything.
func patternTerms(pattern string) []string {
	var terms []string
	for pattern = strings.TrimSpace(pattern); pattern != ""; pattern = strings.TrimSpace(pattern) {
		if pattern[0] == '"' {
			end := strings.IndexByte(pattern[1:], '"')
			if end < 0 {
				terms = append(terms, pattern[1:])
				break
			}
			terms = append(terms, pattern[1:end+1])
			pattern = pattern[end+2:]
			continue
		}
		end := strings.IndexFunc(pattern, unicode.IsSpace)
		if end < 0 {
			end = len(pattern)
		}
		terms = append(terms, pattern[:end])
		pattern = pattern[end:]
	}
	return terms
}

// parseToken reads a nextToken or a GetLogEvents forward/backward token.
func parseToken(token string) (logs.Position, error) {
	if token == "" {
		return logs.Position{}, nil
	}
	p, err := logs.ParsePosition(strings.TrimPrefix(strings.TrimPrefix(token, "f/"), "b/"))
	if err != nil {
		return p, logsValidation("The specified nextToken is invalid.")
	}
	return p, nil
}

type getLogEventsInput struct {
	logGroupInput
	LogStreamName string `json:"logStreamName"`
	StartTime     int64  `json:"startTime"`
	EndTime       int64  `json:"endTime"`
	NextToken     string `json:"nextToken"`
	Limit         int    `json:"limit"`
}

type outputLogEvent struct {
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
}

type getLogEventsOutput struct {
	Events            []outputLogEvent `json:"events"`
	NextForwardToken  string           `json:"nextForwardToken"`
	NextBackwardToken string           `json:"nextBackwardToken"`
}

// getLogEvents reads one log stream oldest first. Its forward token
// continues where the page stopped (or, at the end, where new events will
// appear), as the CLI's `get-log-events` expects.
func (f *Frontend) getLogEvents(rq *request) error {
	var in getLogEventsInput
	group, err := f.openLogGroup(rq, &in)
	if err != nil {
		return err
	}
	if in.LogStreamName == "" {
		return logsValidation("logStreamName must be given.")
	}
	q := logs.Query{Group: group, Start: in.StartTime, End: in.EndTime, Streams: []string{in.LogStreamName}, Limit: in.Limit}
	if q.After, err = parseToken(in.NextToken); err != nil {
		return err
	}
	page, err := f.logs.Read(rq.r.Context(), q)
	if err != nil {
		return err
	}
	out := getLogEventsOutput{Events: make([]outputLogEvent, len(page.Events))}
	for i, e := range page.Events {
		out.Events[i] = outputLogEvent{Timestamp: e.Timestamp, Message: e.Message, IngestionTime: e.IngestionTime}
	}
	next := page.Next
	if next.IsZero() {
		next = page.End
	}
	out.NextForwardToken = "f/" + next.String()
	out.NextBackwardToken = "b/" + q.After.String()
	return rq.json(http.StatusOK, out)
}

type describeLogGroupsInput struct {
	LogGroupNamePrefix  string `json:"logGroupNamePrefix"`
	LogGroupNamePattern string `json:"logGroupNamePattern"`
	Limit               int    `json:"limit"`
	NextToken           string `json:"nextToken"`
}

type logGroup struct {
	LogGroupName      string `json:"logGroupName"`
	CreationTime      int64  `json:"creationTime,omitempty"`
	RetentionInDays   int    `json:"retentionInDays,omitempty"`
	MetricFilterCount int    `json:"metricFilterCount"`
	Arn               string `json:"arn"`
	LogGroupArn       string `json:"logGroupArn"`
	StoredBytes       int64  `json:"storedBytes"`
	LogGroupClass     string `json:"logGroupClass"`
}

// describeLogGroups lists the log groups created through the API and those
// with events, by name, in pages of limit (at most 50).
func (f *Frontend) describeLogGroups(rq *request) error {
	var in describeLogGroupsInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.LogGroupNamePrefix != "" && in.LogGroupNamePattern != "" {
		return logsValidation("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
	}
	limit := in.Limit
	if limit <= 0 || limit > 50 {
		limit = 50
	}
	withEvents, err := f.logs.GroupsWithEvents(rq.r.Context())
	if err != nil {
		return err
	}
	byName := map[string]logGroup{}
	for _, g := range withEvents {
		byName[g] = logGroup{LogGroupName: g}
	}
	for _, info := range f.logs.Groups() {
		byName[info.Name] = logGroup{LogGroupName: info.Name, CreationTime: info.Created, RetentionInDays: info.RetentionInDays}
	}
	names := slices.Sorted(maps.Keys(byName))
	out := struct {
		LogGroups []logGroup `json:"logGroups"`
		NextToken string     `json:"nextToken,omitempty"`
	}{LogGroups: []logGroup{}}
	for _, name := range names {
		if !strings.HasPrefix(name, in.LogGroupNamePrefix) || !strings.Contains(strings.ToLower(name), strings.ToLower(in.LogGroupNamePattern)) ||
			name <= in.NextToken {
			continue
		}
		if len(out.LogGroups) == limit {
			out.NextToken = out.LogGroups[limit-1].LogGroupName
			break
		}
		g := byName[name]
		arn := f.logGroupARN(name)
		g.Arn, g.LogGroupArn, g.LogGroupClass = arn+":*", arn, "STANDARD"
		out.LogGroups = append(out.LogGroups, g)
	}
	return rq.json(http.StatusOK, out)
}

type describeLogStreamsInput struct {
	logGroupInput
	LogStreamNamePrefix string `json:"logStreamNamePrefix"`
	OrderBy             string `json:"orderBy"`
	Descending          bool   `json:"descending"`
	Limit               int    `json:"limit"`
}

type logStreamOutput struct {
	LogStreamName       string `json:"logStreamName"`
	FirstEventTimestamp int64  `json:"firstEventTimestamp,omitempty"`
	LastEventTimestamp  int64  `json:"lastEventTimestamp,omitempty"`
	LastIngestionTime   int64  `json:"lastIngestionTime,omitempty"`
	CreationTime        int64  `json:"creationTime"`
	Arn                 string `json:"arn"`
}

func (f *Frontend) describeLogStreams(rq *request) error {
	var in describeLogStreamsInput
	group, err := f.openLogGroup(rq, &in)
	if err != nil {
		return err
	}
	streams, err := f.logs.Streams(rq.r.Context(), group)
	if err != nil {
		return err
	}
	slices.SortFunc(streams, func(a, b logs.StreamInfo) int {
		if in.OrderBy == "LastEventTime" {
			return cmp.Compare(a.LastEvent, b.LastEvent)
		}
		return strings.Compare(a.Name, b.Name)
	})
	if in.Descending {
		slices.Reverse(streams)
	}
	out := struct {
		LogStreams []logStreamOutput `json:"logStreams"`
	}{LogStreams: []logStreamOutput{}}
	arn := f.logGroupARN(group) + ":log-stream:"
	for _, s := range streams {
		if !strings.HasPrefix(s.Name, in.LogStreamNamePrefix) {
			continue
		}
		if in.Limit > 0 && len(out.LogStreams) == in.Limit {
			break
		}
		out.LogStreams = append(out.LogStreams, logStreamOutput{LogStreamName: s.Name, FirstEventTimestamp: s.FirstEvent,
			LastEventTimestamp: s.LastEvent, LastIngestionTime: s.LastIngestion, CreationTime: s.Created, Arn: arn + s.Name})
	}
	return rq.json(http.StatusOK, out)
}
