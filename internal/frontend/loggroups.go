package frontend

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/logs"
	"github.com/lamina-project/lamina/internal/store"
)

// The log group management of the Logs API that deploy tools (CloudFormation
// through SAM and CDK, the Serverless Framework, Terraform) and logging
// libraries call: create and delete groups, retention, tags, and writing
// events to a stream of one's own.

// logGroupNameRE is CloudWatch Logs' pattern of log group names.
var logGroupNameRE = regexp.MustCompile(`^[\.\-_/#A-Za-z0-9]{1,512}$`)

// retentionDays are the retentions PutRetentionPolicy accepts.
var retentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

// PutLogEvents bounds, as CloudWatch Logs has them.
const (
	maxPutLogEvents      = 10000
	maxPutLogEventsBytes = 1048576 // messages plus 26 bytes an event
	putLogEventOverhead  = 26
	maxLogEventAge       = 14 * 24 * time.Hour
	maxLogEventAhead     = 2 * time.Hour
)

// logsGroupError turns an error of the table of log groups into the Logs
// API's.
func logsGroupError(err error, group string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return logGroupNotFound()
	case errors.Is(err, store.ErrExists):
		return &lamina.Error{Status: http.StatusBadRequest, Code: "ResourceAlreadyExistsException", Message: "The specified log group already exists"}
	case errors.Is(err, logs.ErrTooMany):
		return logsLimit(fmt.Sprintf("Resource limit exceeded for log group %s: at most %d log groups, %d tags and %d created log streams a group.",
			group, logs.MaxGroups, logs.MaxGroupTags, logs.MaxCreatedStreams))
	case errors.Is(err, logs.ErrNoGroupTable):
		return &lamina.Error{Status: http.StatusBadRequest, Code: "InvalidOperationException", Message: "This node keeps no log groups."}
	}
	return err
}

type createLogGroupInput struct {
	LogGroupName  string            `json:"logGroupName"`
	KmsKeyID      string            `json:"kmsKeyId"`
	Tags          map[string]string `json:"tags"`
	LogGroupClass string            `json:"logGroupClass"`
}

func (f *Frontend) createLogGroup(rq *request) error {
	var in createLogGroupInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	switch {
	case !logGroupNameRE.MatchString(in.LogGroupName):
		return logsValidation("1 validation error detected: Value '" + in.LogGroupName + "' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+")
	case in.KmsKeyID != "":
		return logsValidation("kmsKeyId is not supported: Lamina has no KMS to encrypt log groups with.")
	case in.LogGroupClass != "" && in.LogGroupClass != "STANDARD":
		return logsValidation("logGroupClass " + in.LogGroupClass + " is not supported: Lamina's log groups are STANDARD.")
	}
	if err := validateLogTags(in.Tags); err != nil {
		return err
	}
	ctx := rq.r.Context()
	// A group with events (a function's, written before) exists already.
	if err := f.checkLogGroup(ctx, in.LogGroupName, false); err == nil {
		return logsGroupError(store.ErrExists, in.LogGroupName)
	}
	if err := f.logs.CreateGroup(ctx, &logs.GroupInfo{Name: in.LogGroupName, Tags: in.Tags}); err != nil {
		return logsGroupError(err, in.LogGroupName)
	}
	return rq.json(http.StatusOK, struct{}{})
}

func (f *Frontend) deleteLogGroup(rq *request) error {
	var in logGroupInput
	group, err := f.openLogGroup(rq, &in)
	if err != nil {
		return err
	}
	if err := f.checkLogGroup(rq.r.Context(), group, false); err != nil {
		return err
	}
	if err := f.logs.DeleteGroup(rq.r.Context(), group); err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct{}{})
}

// changeLogGroup applies change to the record of an existing log group,
// making the record of a group that exists by its events.
func (f *Frontend) changeLogGroup(rq *request, group string, change func(*logs.GroupInfo) error) (*logs.GroupInfo, error) {
	if err := f.checkLogGroup(rq.r.Context(), group, false); err != nil {
		return nil, err
	}
	info, err := f.logs.UpdateGroup(rq.r.Context(), group, true, change)
	if err != nil {
		return nil, logsGroupError(err, group)
	}
	return info, nil
}

type putRetentionPolicyInput struct {
	logGroupInput
	RetentionInDays int `json:"retentionInDays"`
}

func (f *Frontend) putRetentionPolicy(rq *request) error {
	var in putRetentionPolicyInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	group, err := in.group()
	if err != nil {
		return err
	}
	if !slices.Contains(retentionDays, in.RetentionInDays) {
		return logsValidation(fmt.Sprintf("1 validation error detected: Value '%d' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: %v", in.RetentionInDays, retentionDays))
	}
	if _, err := f.changeLogGroup(rq, group, func(info *logs.GroupInfo) error {
		info.RetentionInDays = in.RetentionInDays
		return nil
	}); err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct{}{})
}

func (f *Frontend) deleteRetentionPolicy(rq *request) error {
	var in logGroupInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	group, err := in.group()
	if err != nil {
		return err
	}
	if _, err := f.changeLogGroup(rq, group, func(info *logs.GroupInfo) error {
		info.RetentionInDays = 0
		return nil
	}); err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct{}{})
}

// logStreamNameRE is CloudWatch Logs' pattern of log stream names.
var logStreamNameRE = regexp.MustCompile(`^[^:*]{1,512}$`)

type logStreamInput struct {
	logGroupInput
	LogStreamName string `json:"logStreamName"`
}

func (f *Frontend) createLogStream(rq *request) error {
	var in logStreamInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	group, err := in.group()
	if err != nil {
		return err
	}
	if !logStreamNameRE.MatchString(in.LogStreamName) {
		return logsValidation("1 validation error detected: Value '" + in.LogStreamName + "' at 'logStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*")
	}
	exists := false
	if _, err := f.changeLogGroup(rq, group, func(info *logs.GroupInfo) error {
		if _, exists = info.Streams[in.LogStreamName]; exists {
			return nil
		}
		if info.Streams == nil {
			info.Streams = map[string]int64{}
		}
		info.Streams[in.LogStreamName] = time.Now().UnixMilli()
		return nil
	}); err != nil {
		return err
	}
	if exists {
		return &lamina.Error{Status: http.StatusBadRequest, Code: "ResourceAlreadyExistsException", Message: "The specified log stream already exists"}
	}
	return rq.json(http.StatusOK, struct{}{})
}

type putLogEventsInput struct {
	logStreamInput
	LogEvents []struct {
		Timestamp int64  `json:"timestamp"`
		Message   string `json:"message"`
	} `json:"logEvents"`
	SequenceToken string `json:"sequenceToken"`
}

type rejectedLogEventsInfo struct {
	TooNewLogEventStartIndex *int `json:"tooNewLogEventStartIndex,omitempty"`
	TooOldLogEventEndIndex   *int `json:"tooOldLogEventEndIndex,omitempty"`
	ExpiredLogEventEndIndex  *int `json:"expiredLogEventEndIndex,omitempty"`
}

// putLogEvents writes events to a log stream created with CreateLogStream.
// Events too old (over 14 days or past the group's retention) or too new
// (over 2 hours ahead) are rejected and reported, as CloudWatch Logs does.
func (f *Frontend) putLogEvents(rq *request) error {
	var in putLogEventsInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	group, err := in.group()
	if err != nil {
		return err
	}
	ctx := rq.r.Context()
	switch {
	case len(in.LogEvents) == 0:
		return logsValidation("1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length greater than or equal to 1")
	case len(in.LogEvents) > maxPutLogEvents:
		return logsValidation(fmt.Sprintf("1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length less than or equal to %d", maxPutLogEvents))
	}
	size := 0
	for i, e := range in.LogEvents {
		size += len(e.Message) + putLogEventOverhead
		if i > 0 && e.Timestamp < in.LogEvents[i-1].Timestamp {
			return logsValidation("Log events in a single PutLogEvents request must be in chronological order.")
		}
	}
	if size > maxPutLogEventsBytes {
		return logsValidation(fmt.Sprintf("Upload too large: %d bytes exceeds limit of %d", size, maxPutLogEventsBytes))
	}
	if in.LogEvents[len(in.LogEvents)-1].Timestamp-in.LogEvents[0].Timestamp > (24 * time.Hour).Milliseconds() {
		return logsValidation("The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
	}
	info, err := f.logs.Group(ctx, group)
	if err != nil {
		if err := f.checkLogGroup(ctx, group, false); err != nil {
			return err
		}
	}
	if info == nil || info.Streams[in.LogStreamName] == 0 {
		return &lamina.Error{Status: http.StatusBadRequest, Code: "ResourceNotFoundException", Message: "The specified log stream does not exist."}
	}
	now := time.Now()
	oldest := now.Add(-maxLogEventAge).UnixMilli()
	expired := int64(0)
	if info.RetentionInDays > 0 {
		expired = now.Add(-time.Duration(info.RetentionInDays) * 24 * time.Hour).UnixMilli()
	}
	newest := now.Add(maxLogEventAhead).UnixMilli()
	// The indexes CloudWatch Logs reports: the end (exclusive) of the
	// leading events too old or expired, the start of the trailing ones
	// too new.
	var rejected rejectedLogEventsInfo
	index := func(i int) *int { return &i }
	events := make([]logs.Event, 0, len(in.LogEvents))
	for i, e := range in.LogEvents {
		switch {
		case e.Timestamp < oldest:
			rejected.TooOldLogEventEndIndex = index(i + 1)
		case e.Timestamp < expired:
			rejected.ExpiredLogEventEndIndex = index(i + 1)
		case e.Timestamp > newest:
			if rejected.TooNewLogEventStartIndex == nil {
				rejected.TooNewLogEventStartIndex = index(i)
			}
		default:
			events = append(events, logs.Event{Timestamp: e.Timestamp, Stream: in.LogStreamName, Message: e.Message})
		}
	}
	f.logs.Append(group, events...)
	out := struct {
		NextSequenceToken     string                 `json:"nextSequenceToken"`
		RejectedLogEventsInfo *rejectedLogEventsInfo `json:"rejectedLogEventsInfo,omitempty"`
	}{NextSequenceToken: strconv.FormatInt(now.UnixNano(), 10)}
	if rejected != (rejectedLogEventsInfo{}) {
		out.RejectedLogEventsInfo = &rejected
	}
	return rq.json(http.StatusOK, out)
}

// validateLogTags checks log group tags as CloudWatch Logs does.
func validateLogTags(tags map[string]string) error {
	if len(tags) > logs.MaxGroupTags {
		return logsValidation(fmt.Sprintf("A log group can have at most %d tags.", logs.MaxGroupTags))
	}
	for k, v := range tags {
		switch {
		case k == "" || len(k) > 128:
			return logsValidation(fmt.Sprintf("Tag keys must be between 1 and 128 characters: %q", k))
		case len(v) > 256:
			return logsValidation(fmt.Sprintf("Tag values must be at most 256 characters: key %q", k))
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return logsValidation(fmt.Sprintf("Tag keys starting with 'aws:' are reserved: %q", k))
		}
	}
	return nil
}

// taggedLogGroup returns the log group a tagging ARN names.
func (f *Frontend) taggedLogGroup(arn string) (string, error) {
	prefix := f.logGroupARN("")
	group, ok := strings.CutPrefix(arn, prefix)
	if !ok || group == "" {
		return "", &lamina.Error{Status: http.StatusBadRequest, Code: "ResourceNotFoundException", Message: "The specified resource does not exist: " + arn}
	}
	return strings.TrimSuffix(group, ":*"), nil
}

// tagGroup adds tags to a log group.
func (f *Frontend) tagGroup(rq *request, group string, tags map[string]string) error {
	if err := validateLogTags(tags); err != nil {
		return err
	}
	_, err := f.changeLogGroup(rq, group, func(info *logs.GroupInfo) error {
		if info.Tags == nil {
			info.Tags = map[string]string{}
		}
		maps.Copy(info.Tags, tags)
		return nil
	})
	return err
}

// untagGroup removes tags from a log group.
func (f *Frontend) untagGroup(rq *request, group string, keys []string) error {
	_, err := f.changeLogGroup(rq, group, func(info *logs.GroupInfo) error {
		for _, k := range keys {
			delete(info.Tags, k)
		}
		return nil
	})
	return err
}

// groupTags returns the tags of a log group.
func (f *Frontend) groupTags(rq *request, group string) (map[string]string, error) {
	if err := f.checkLogGroup(rq.r.Context(), group, false); err != nil {
		return nil, err
	}
	tags := map[string]string{}
	if info, err := f.logs.Group(rq.r.Context(), group); err == nil {
		maps.Copy(tags, info.Tags)
	}
	return tags, nil
}

type logResourceInput struct {
	ResourceArn string            `json:"resourceArn"`
	Tags        map[string]string `json:"tags"`
	TagKeys     []string          `json:"tagKeys"`
}

// logResource decodes a tagging request that names a log group by its
// ARN, and returns it with the group's name.
func (f *Frontend) logResource(rq *request) (logResourceInput, string, error) {
	var in logResourceInput
	if err := rq.decode(&in); err != nil {
		return in, "", err
	}
	group, err := f.taggedLogGroup(in.ResourceArn)
	return in, group, err
}

func (f *Frontend) tagLogResource(rq *request) error {
	in, group, err := f.logResource(rq)
	if err != nil {
		return err
	}
	if err := f.tagGroup(rq, group, in.Tags); err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct{}{})
}

func (f *Frontend) untagLogResource(rq *request) error {
	in, group, err := f.logResource(rq)
	if err != nil {
		return err
	}
	if err := f.untagGroup(rq, group, in.TagKeys); err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct{}{})
}

func (f *Frontend) listTagsForLogResource(rq *request) error {
	_, group, err := f.logResource(rq)
	if err != nil {
		return err
	}
	tags, err := f.groupTags(rq, group)
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct {
		Tags map[string]string `json:"tags"`
	}{tags})
}

// The legacy tagging operations name the group and, to untag, list keys
// under "tags".

func (f *Frontend) tagLogGroup(rq *request) error {
	var in struct {
		logGroupInput
		Tags map[string]string `json:"tags"`
	}
	if err := rq.decode(&in); err != nil {
		return err
	}
	group, err := in.group()
	if err != nil {
		return err
	}
	if err := f.tagGroup(rq, group, in.Tags); err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct{}{})
}

func (f *Frontend) untagLogGroup(rq *request) error {
	var in struct {
		logGroupInput
		Tags []string `json:"tags"`
	}
	if err := rq.decode(&in); err != nil {
		return err
	}
	group, err := in.group()
	if err != nil {
		return err
	}
	if err := f.untagGroup(rq, group, in.Tags); err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct{}{})
}

func (f *Frontend) listTagsLogGroup(rq *request) error {
	var in logGroupInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	group, err := in.group()
	if err != nil {
		return err
	}
	tags, err := f.groupTags(rq, group)
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, struct {
		Tags map[string]string `json:"tags"`
	}{tags})
}
