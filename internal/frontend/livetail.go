package frontend

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/google/uuid"
	"github.com/lamina-project/lamina/internal/logs"
)

// StartLiveTail streams the new events of up to 10 log groups as they are
// stored, for `aws logs start-live-tail` and the SDKs: an event stream
// (application/vnd.amazon.eventstream) of an initial-response, a
// sessionStart, then a sessionUpdate every second with what arrived, as
// CloudWatch Logs sends them. The SDKs address it to the host
// "streaming-" (botocore) or "stream-" (aws-sdk-go-v2) + the endpoint's;
// every listener serves it whatever the host.

// Live Tail bounds, as CloudWatch Logs has them.
const (
	maxLiveTailGroups    = 10
	maxLiveTailSessions  = 15 // at once, on a node
	liveTailDuration     = 3 * time.Hour
	liveTailInterval     = time.Second
	maxLiveTailPerUpdate = 500 // events in one update; more are sampled out
)

type startLiveTailInput struct {
	LogGroupIdentifiers   []string `json:"logGroupIdentifiers"`
	LogStreamNames        []string `json:"logStreamNames"`
	LogStreamNamePrefixes []string `json:"logStreamNamePrefixes"`
	LogEventFilterPattern string   `json:"logEventFilterPattern"`
}

type liveTailSessionStart struct {
	RequestID             string   `json:"requestId"`
	SessionID             string   `json:"sessionId"`
	LogGroupIdentifiers   []string `json:"logGroupIdentifiers"`
	LogStreamNames        []string `json:"logStreamNames,omitempty"`
	LogStreamNamePrefixes []string `json:"logStreamNamePrefixes,omitempty"`
	LogEventFilterPattern string   `json:"logEventFilterPattern,omitempty"`
}

type liveTailResult struct {
	LogStreamName      string `json:"logStreamName"`
	LogGroupIdentifier string `json:"logGroupIdentifier"`
	Message            string `json:"message"`
	Timestamp          int64  `json:"timestamp"`
	IngestionTime      int64  `json:"ingestionTime"`
}

type liveTailSessionUpdate struct {
	SessionMetadata struct {
		Sampled bool `json:"sampled"`
	} `json:"sessionMetadata"`
	SessionResults []liveTailResult `json:"sessionResults"`
}

// liveTailCursor follows one log group from where the session started.
type liveTailCursor struct {
	group string
	id    string // as the caller named it
	after logs.Position
}

func (f *Frontend) startLiveTail(rq *request) error {
	var in startLiveTailInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	switch {
	case len(in.LogGroupIdentifiers) == 0 || len(in.LogGroupIdentifiers) > maxLiveTailGroups:
		return logsValidation(fmt.Sprintf("logGroupIdentifiers must name 1 to %d log groups.", maxLiveTailGroups))
	case len(in.LogStreamNames) > 0 && len(in.LogStreamNamePrefixes) > 0:
		return logsValidation("logStreamNames and logStreamNamePrefixes are mutually exclusive.")
	case (len(in.LogStreamNames) > 0 || len(in.LogStreamNamePrefixes) > 0) && len(in.LogGroupIdentifiers) > 1:
		return logsValidation("logStreamNames and logStreamNamePrefixes can only be given with one log group.")
	}
	ctx := rq.r.Context()
	started := time.Now().UnixMilli()
	cursors := make([]*liveTailCursor, len(in.LogGroupIdentifiers))
	for i, id := range in.LogGroupIdentifiers {
		group := groupFromIdentifier(id)
		if err := f.checkLogGroup(ctx, group, true); err != nil {
			return err
		}
		// Start after everything stored so far.
		page, err := f.logs.Read(ctx, logs.Query{Group: group, Start: started})
		if err != nil {
			return err
		}
		cursors[i] = &liveTailCursor{group: group, id: id, after: page.End}
	}
	if f.liveTails.Add(1) > maxLiveTailSessions {
		f.liveTails.Add(-1)
		return logsLimit(fmt.Sprintf("Too many Live Tail sessions: at most %d at once.", maxLiveTailSessions))
	}
	defer f.liveTails.Add(-1)

	out := &eventStream{w: rq.w, rc: http.NewResponseController(rq.w), enc: eventstream.NewEncoder()}
	rq.w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	rq.w.WriteHeader(http.StatusOK)
	if err := out.event("initial-response", "application/x-amz-json-1.1", []byte("{}")); err != nil {
		return nil
	}
	start, _ := json.Marshal(liveTailSessionStart{RequestID: rq.requestID, SessionID: uuid.NewString(),
		LogGroupIdentifiers: in.LogGroupIdentifiers, LogStreamNames: in.LogStreamNames,
		LogStreamNamePrefixes: in.LogStreamNamePrefixes, LogEventFilterPattern: in.LogEventFilterPattern})
	if err := out.event("sessionStart", "application/json", start); err != nil {
		return nil
	}
	terms := patternTerms(in.LogEventFilterPattern)
	tick := time.NewTicker(liveTailInterval)
	defer tick.Stop()
	deadline := time.After(liveTailDuration)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-deadline:
			f.liveTailException(out, "SessionTimeoutException", "Session timed out after 3 hours.")
			return nil
		case <-tick.C:
		}
		var update liveTailSessionUpdate
		update.SessionResults = []liveTailResult{}
		for _, c := range cursors {
			q := logs.Query{Group: c.group, Start: started, Streams: in.LogStreamNames, Terms: terms, After: c.after}
			for {
				page, err := f.logs.Read(ctx, q)
				if err != nil {
					f.log.Warn("live tail read failed", "log_group", c.group, "err", err)
					f.liveTailException(out, "SessionStreamingException", "The log store could not be read; start a new session.")
					return nil
				}
				for _, e := range page.Events {
					if len(in.LogStreamNamePrefixes) > 0 && !slices.ContainsFunc(in.LogStreamNamePrefixes, func(p string) bool { return strings.HasPrefix(e.Stream, p) }) {
						continue
					}
					if len(update.SessionResults) == maxLiveTailPerUpdate {
						update.SessionMetadata.Sampled = true
						continue
					}
					update.SessionResults = append(update.SessionResults, liveTailResult{LogStreamName: e.Stream,
						LogGroupIdentifier: c.id, Message: e.Message, Timestamp: e.Timestamp, IngestionTime: e.IngestionTime})
				}
				if page.Next.IsZero() {
					c.after = page.End
					break
				}
				q.After = page.Next
			}
		}
		data, _ := json.Marshal(update)
		if err := out.event("sessionUpdate", "application/json", data); err != nil {
			return nil // the client went away
		}
	}
}

// liveTailException ends a session with an exception event.
func (f *Frontend) liveTailException(out *eventStream, code, message string) {
	if out.failed != nil {
		return
	}
	data, _ := json.Marshal(map[string]string{"message": message})
	msg := eventstream.Message{Payload: data}
	msg.Headers.Set(":message-type", eventstream.StringValue("exception"))
	msg.Headers.Set(":exception-type", eventstream.StringValue(code))
	msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
	_ = out.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if out.enc.Encode(out.w, msg) == nil {
		_ = out.rc.Flush()
	}
}
