package s3

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/async"
	"github.com/lamina-project/lamina/internal/store"
)

// notificationConfig is one Lambda destination of a bucket's notification
// configuration.
type notificationConfig struct {
	ID       string
	Function string // the function's ARN, maybe qualified
	Events   []string
	Prefix   string `json:",omitempty"`
	Suffix   string `json:",omitempty"`
}

// matches reports whether the configuration takes event (without the
// "s3:" prefix, e.g. "ObjectCreated:Put") of key.
func (n *notificationConfig) matches(event, key string) bool {
	if !strings.HasPrefix(key, n.Prefix) || !strings.HasSuffix(key, n.Suffix) {
		return false
	}
	for _, e := range n.Events {
		e = strings.TrimPrefix(e, "s3:")
		if e == event || (strings.HasSuffix(e, ":*") && strings.HasPrefix(event, strings.TrimSuffix(e, "*"))) {
			return true
		}
	}
	return false
}

// supportedEvents are the event types Lamina notifies of.
var supportedEvents = []string{"s3:ObjectCreated:*", "s3:ObjectCreated:Put", "s3:ObjectCreated:Post",
	"s3:ObjectCreated:Copy", "s3:ObjectCreated:CompleteMultipartUpload", "s3:ObjectRemoved:*",
	"s3:ObjectRemoved:Delete", "s3:ObjectRemoved:DeleteMarkerCreated"}

// owedNotification is an asynchronous invocation a change of an object
// owes a function, stored with the change until the async queue took it.
type owedNotification struct {
	// ID is the invocation's request id: the async queue drops a second
	// submission of it (a redelivery after a crash) within its
	// deduplication window.
	ID        string
	Function  string
	Qualifier string `json:",omitempty"`
	Payload   json.RawMessage
	At        time.Time
	// Trace is the trace header (X-Amzn-Trace-Id) of the request that
	// made the change: its lineage counts the rounds of a recursive loop
	// (Config.Admit).
	Trace string `json:",omitempty"`
}

// The XML of notification configurations. S3's model names Lambda
// destinations with their legacy names, CloudFunctionConfiguration and
// CloudFunction.
type notificationConfiguration struct {
	XMLName   xml.Name             `xml:"NotificationConfiguration"`
	Xmlns     string               `xml:"xmlns,attr,omitempty"`
	Functions []functionDestConfig `xml:"CloudFunctionConfiguration"`
	Queues    []struct{}           `xml:"QueueConfiguration"`
	Topics    []struct{}           `xml:"TopicConfiguration"`
	// EventBridge is EventBridgeConfiguration.
	EventBridge *struct{} `xml:"EventBridgeConfiguration"`
}

type functionDestConfig struct {
	ID       string   `xml:"Id,omitempty"`
	Function string   `xml:"CloudFunction"`
	Events   []string `xml:"Event"`
	Rules    []struct {
		Name  string
		Value string
	} `xml:"Filter>S3Key>FilterRule"`
}

func (s *Service) getNotification(c *call) error {
	b, err := s.bucket(c.bucket)
	if err != nil {
		return err
	}
	out := notificationConfiguration{Xmlns: xmlns}
	for _, n := range b.Notifications {
		d := functionDestConfig{ID: n.ID, Function: n.Function, Events: n.Events}
		if n.Prefix != "" {
			d.Rules = append(d.Rules, struct{ Name, Value string }{"Prefix", n.Prefix})
		}
		if n.Suffix != "" {
			d.Rules = append(d.Rules, struct{ Name, Value string }{"Suffix", n.Suffix})
		}
		out.Functions = append(out.Functions, d)
	}
	return writeXML(c.w, http.StatusOK, out)
}

func (s *Service) putNotification(c *call) error {
	if _, err := s.bucket(c.bucket); err != nil {
		return err
	}
	var in notificationConfiguration
	if err := s.decodeXML(c, &in); err != nil {
		return err
	}
	if len(in.Queues) > 0 || len(in.Topics) > 0 || in.EventBridge != nil {
		return errInvalidArgument("Lamina delivers bucket notifications to Lambda functions only (CloudFunctionConfiguration).")
	}
	configs, err := s.checkNotifications(c, in.Functions)
	if err != nil {
		return err
	}
	if _, err := s.buckets.Update(c.Context(), c.bucket, func(b *bucketRecord) error {
		b.Notifications = configs
		return nil
	}); errors.Is(err, store.ErrNotFound) {
		return errNoSuchBucket()
	} else if err != nil {
		return storeFailure(err)
	}
	c.w.WriteHeader(http.StatusOK)
	return nil
}

// checkNotifications validates a notification configuration as S3 does:
// known events, at most one prefix and one suffix rule, no two
// configurations that would both take one change, destinations that exist
// and that S3 may invoke (unless x-amz-skip-destination-validation).
func (s *Service) checkNotifications(c *call, in []functionDestConfig) ([]notificationConfig, error) {
	var out []notificationConfig
	ids := map[string]bool{}
	for _, d := range in {
		n := notificationConfig{ID: d.ID, Function: strings.TrimSpace(d.Function), Events: d.Events}
		if n.ID == "" {
			n.ID = base64.RawStdEncoding.EncodeToString([]byte(uuid.NewString()))
		}
		if ids[n.ID] {
			return nil, errInvalidArgument("Configuration ID %s is used more than once.", n.ID)
		}
		ids[n.ID] = true
		if len(n.Events) == 0 {
			return nil, errInvalidArgument("A notification configuration must name at least one event.")
		}
		for _, e := range n.Events {
			if !slices.Contains(supportedEvents, e) {
				return nil, errInvalidArgument("The event %s is not supported for notifications.", e)
			}
		}
		for _, r := range d.Rules {
			switch strings.ToLower(r.Name) {
			case "prefix":
				if n.Prefix != "" {
					return nil, errInvalidArgument("Cannot specify more than one prefix rule in a filter.")
				}
				n.Prefix = r.Value
			case "suffix":
				if n.Suffix != "" {
					return nil, errInvalidArgument("Cannot specify more than one suffix rule in a filter.")
				}
				n.Suffix = r.Value
			default:
				return nil, errInvalidArgument("filter rule name must be either prefix or suffix")
			}
		}
		for _, other := range out {
			if overlap(&n, &other) {
				return nil, errInvalidArgument("Configurations overlap. Configurations on the same bucket cannot share a common event type.")
			}
		}
		if !strings.EqualFold(c.Request.Header.Get("X-Amz-Skip-Destination-Validation"), "true") {
			if err := s.checkDestination(c.Context(), c.bucket, n.Function); err != nil {
				return nil, err
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// overlap reports whether a change could match both configurations: they
// share an event type and their prefix and suffix rules both overlap.
func overlap(a, b *notificationConfig) bool {
	shared := false
	for _, ea := range a.Events {
		for _, eb := range b.Events {
			ka, kb := strings.TrimSuffix(ea, "*"), strings.TrimSuffix(eb, "*")
			if strings.HasPrefix(ka, kb) || strings.HasPrefix(kb, ka) {
				shared = true
			}
		}
	}
	prefixes := strings.HasPrefix(a.Prefix, b.Prefix) || strings.HasPrefix(b.Prefix, a.Prefix)
	suffixes := strings.HasSuffix(a.Suffix, b.Suffix) || strings.HasSuffix(b.Suffix, a.Suffix)
	return shared && prefixes && suffixes
}

// checkDestination makes sure a function can receive the bucket's
// notifications: it exists in this account and region, and its resource
// policy lets S3 invoke it for the bucket.
func (s *Service) checkDestination(ctx context.Context, bucket, arn string) error {
	invalid := func(why string) error {
		return errInvalidArgument("Unable to validate the following destination configurations: %s: %s", arn, why)
	}
	region, account, name, qualifier, ok := lamina.ParseFunctionARN(arn)
	if !ok || region != s.cfg.Region || account != s.cfg.AccountID {
		return invalid("not a function ARN of this region and account")
	}
	if err := s.cfg.Functions.Exists(ctx, name, qualifier); errors.Is(err, store.ErrNotFound) {
		return invalid("the function does not exist")
	} else if err != nil {
		return storeFailure(err)
	}
	if err := s.mayInvoke(ctx, arn, bucket); err != nil {
		return invalid(err.Error())
	}
	return nil
}

// mayInvoke is where S3 asks whether it may invoke a function for a bucket:
// the function's resource policy must allow principal s3.amazonaws.com
// lambda:InvokeFunction with SourceArn arn:aws:s3:::<bucket> and
// SourceAccount the bucket's account (Config.MayInvoke). It is asked when
// a configuration is put, as S3 does.
func (s *Service) mayInvoke(ctx context.Context, functionARN, bucket string) error {
	if s.cfg.MayInvoke == nil {
		return nil
	}
	return s.cfg.MayInvoke(ctx, functionARN, "arn:aws:s3:::"+bucket, s.cfg.AccountID)
}

// eventRecord is one record of an S3 event, as S3 sends it (event
// version 2.1).
type eventRecord struct {
	EventVersion      string            `json:"eventVersion"`
	EventSource       string            `json:"eventSource"`
	AWSRegion         string            `json:"awsRegion"`
	EventTime         string            `json:"eventTime"`
	EventName         string            `json:"eventName"`
	UserIdentity      principal         `json:"userIdentity"`
	RequestParameters map[string]string `json:"requestParameters"`
	ResponseElements  map[string]string `json:"responseElements"`
	S3                eventEntity       `json:"s3"`
}

type principal struct {
	PrincipalID string `json:"principalId"`
}

type eventEntity struct {
	SchemaVersion   string      `json:"s3SchemaVersion"`
	ConfigurationID string      `json:"configurationId"`
	Bucket          eventBucket `json:"bucket"`
	Object          eventObject `json:"object"`
}

type eventBucket struct {
	Name          string    `json:"name"`
	OwnerIdentity principal `json:"ownerIdentity"`
	ARN           string    `json:"arn"`
}

type eventObject struct {
	Key       string `json:"key"`
	Size      *int64 `json:"size,omitempty"`
	ETag      string `json:"eTag,omitempty"`
	VersionID string `json:"versionId,omitempty"`
	Sequencer string `json:"sequencer"`
}

// eventKey encodes a key as S3's event records do: form-encoded (a space
// is "+"), slashes kept.
func eventKey(key string) string {
	return strings.ReplaceAll(url.QueryEscape(key), "%2F", "/")
}

// notifications returns the notifications a change of rec (event, e.g.
// "ObjectCreated:Put") owes under the bucket's configuration.
func (s *Service) notifications(c *call, b *bucketRecord, rec *objectRecord, event string) []owedNotification {
	var out []owedNotification
	now := time.Now().UTC()
	for _, n := range b.Notifications {
		if !n.matches(event, rec.Key) {
			continue
		}
		_, _, name, qualifier, ok := lamina.ParseFunctionARN(n.Function)
		if !ok {
			continue
		}
		ip, _, _ := net.SplitHostPort(c.Request.RemoteAddr)
		r := eventRecord{EventVersion: "2.1", EventSource: "aws:s3", AWSRegion: s.cfg.Region,
			EventTime: now.Format(timeFormat), EventName: event,
			UserIdentity:      principal{"AWS:" + c.AccessKeyID},
			RequestParameters: map[string]string{"sourceIPAddress": ip},
			ResponseElements:  map[string]string{"x-amz-request-id": c.RequestID, "x-amz-id-2": base64.StdEncoding.EncodeToString([]byte(c.RequestID))},
			S3: eventEntity{SchemaVersion: "1.0", ConfigurationID: n.ID,
				Bucket: eventBucket{Name: b.Name, OwnerIdentity: principal{s.cfg.AccountID}, ARN: "arn:aws:s3:::" + b.Name},
				Object: eventObject{Key: eventKey(rec.Key), Sequencer: rec.Sequencer}}}
		if !rec.Deleted {
			size := rec.Size
			r.S3.Object.Size, r.S3.Object.ETag = &size, strings.Trim(rec.ETag, `"`)
		}
		out = append(out, owedNotification{ID: uuid.NewString(), Function: name, Qualifier: qualifier,
			Payload: marshal(map[string][]eventRecord{"Records": {r}}), At: now, Trace: c.Request.Header.Get("X-Amzn-Trace-Id")})
	}
	return out
}

// deliver hands the notifications the object under key (a table key)
// owes to the async queue, then forgets them. Only one delivery of a key
// runs on a node at once; a submission that fails is left for redeliver.
func (s *Service) deliver(key string) {
	if _, busy := s.delivering.LoadOrStore(key, true); busy {
		return
	}
	defer s.delivering.Delete(key)
	ctx, cancel := context.WithTimeout(context.Background(), deliverTimeout)
	defer cancel()
	for {
		o, err := s.objects.Get(ctx, key)
		if err != nil || len(o.Owed) == 0 {
			return
		}
		sent := map[string]bool{}
		for _, n := range o.Owed {
			trace := n.Trace
			if s.cfg.Admit != nil {
				var ok bool
				if trace, ok = s.cfg.Admit(ctx, n.Function, n.Trace, "arn:aws:s3:::"+o.Bucket); !ok {
					sent[n.ID] = true // a recursive loop stopped: owed no more
					continue
				}
			}
			err := s.cfg.Submit(ctx, &async.Event{RequestID: n.ID, Function: n.Function, Qualifier: n.Qualifier, TraceID: trace, Payload: n.Payload})
			if err != nil {
				s.log.Warn("queueing an S3 notification failed; it will be tried again", "function", n.Function, "err", err)
				break
			}
			sent[n.ID] = true
		}
		if len(sent) == 0 || s.forget(ctx, key, sent) != nil || len(sent) < len(o.Owed) {
			return
		}
	}
}

// deliverTimeout bounds one delivery of a key's notifications.
const deliverTimeout = time.Minute

// forget removes notifications that were handed to the async queue from
// the record under key, and the record itself when it is a deletion that
// owes nothing more.
func (s *Service) forget(ctx context.Context, key string, sent map[string]bool) error {
	_, err := s.objects.Update(ctx, key, func(cur *objectRecord) error {
		cur.Owed = slices.DeleteFunc(cur.Owed, func(n owedNotification) bool { return sent[n.ID] })
		if cur.Deleted && len(cur.Owed) == 0 {
			return errRemove
		}
		return nil
	})
	if errors.Is(err, errRemove) {
		_, err = s.objects.Remove(ctx, key, func(cur *objectRecord) bool {
			return cur.Deleted && !slices.ContainsFunc(cur.Owed, func(n owedNotification) bool { return !sent[n.ID] })
		})
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("forgetting delivered S3 notifications failed; they may be delivered again", "key", key, "err", err)
		return err
	}
	return nil
}

// redeliver delivers what changes older than minAge still owe: those of a
// node that died before it delivered them, and those whose delivery
// failed.
func (s *Service) redeliver(ctx context.Context, minAge time.Duration) {
	cutoff := time.Now().Add(-minAge)
	owing := s.objects.List("", func(o *objectRecord) bool { return len(o.Owed) > 0 && !o.Owed[0].At.After(cutoff) })
	for _, o := range owing {
		if ctx.Err() != nil {
			return
		}
		s.deliver(objectKey(o.Bucket, o.Key))
	}
}
