package sqs

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// MessageAttribute is a message attribute as SQS's API carries it.
type MessageAttribute struct {
	DataType         string
	StringValue      string   `json:",omitempty"`
	BinaryValue      []byte   `json:",omitempty"`
	StringListValues []string `json:",omitempty" query:"StringListValue,flat"`
	BinaryListValues [][]byte `json:",omitempty" query:"BinaryListValue,flat"`
}

// OutgoingMessage is a message to send.
type OutgoingMessage struct {
	Body string
	// DelaySeconds, when set, overrides the queue's delay (standard queues
	// only).
	DelaySeconds *int
	Attributes   map[string]MessageAttribute
	// TraceHeader is the AWSTraceHeader system attribute.
	TraceHeader string
	// GroupID and DeduplicationID are FIFO queues' MessageGroupId and
	// MessageDeduplicationId; standard queues take a GroupID too.
	GroupID, DeduplicationID string
}

// SendResult is what sending a message returns.
type SendResult struct {
	MessageID             string
	MD5OfBody             string
	MD5OfAttributes       string
	MD5OfSystemAttributes string
	// SequenceNumber is set for FIFO queues.
	SequenceNumber string
}

// Message is a message delivered by Receive.
type Message struct {
	MessageID     string
	ReceiptHandle string
	Body          string
	MD5OfBody     string
	// Attributes are the system attributes (SentTimestamp,
	// ApproximateReceiveCount…), all of them; the API returns those asked
	// for.
	Attributes        map[string]string
	MessageAttributes map[string]MessageAttribute
	// MD5OfAttributes is the MD5 of all of MessageAttributes, as SQS
	// computes it; "" when there are none.
	MD5OfAttributes string
}

// Headers of a message in the message stream; part of the on-disk format.
const (
	hdrSent      = "Lamina-Sent"       // unix ms the message was first sent
	hdrVisible   = "Lamina-Visible"    // unix ms a delayed message becomes visible
	hdrExpires   = "Lamina-Expires"    // unix ms its retention ends
	hdrGroup     = "Lamina-Group"      // MessageGroupId
	hdrDedup     = "Lamina-Dedup"      // MessageDeduplicationId
	hdrSender    = "Lamina-Sender"     // the access key that sent it
	hdrMessageID = "Lamina-Message-Id" // a moved message's original id
	hdrSource    = "Lamina-Source"     // a dead letter's source queue ARN
	hdrSize      = "Nats-Msg-Size"     // a headers-only delivery's data size
)

// envelope is what a message stream entry's data holds before the body:
// the attributes, which the view never needs.
type envelope struct {
	Attributes map[string]MessageAttribute `json:"a,omitempty"`
	Trace      string                      `json:"t,omitempty"`
}

// encodeData lays out a message's data: the envelope's length, the
// envelope, the body.
func encodeData(env *envelope, body string) []byte {
	var head []byte
	if len(env.Attributes) > 0 || env.Trace != "" {
		head, _ = json.Marshal(env)
	}
	data := binary.AppendUvarint(make([]byte, 0, len(head)+len(body)+binary.MaxVarintLen64), uint64(len(head)))
	data = append(data, head...)
	return append(data, body...)
}

// decodeData reads what encodeData wrote.
func decodeData(data []byte) (*envelope, string, error) {
	n, k := binary.Uvarint(data)
	if k <= 0 || uint64(len(data)-k) < n {
		return nil, "", errors.New("sqs: malformed message data")
	}
	env := &envelope{}
	if n > 0 {
		if err := json.Unmarshal(data[k:k+int(n)], env); err != nil {
			return nil, "", fmt.Errorf("sqs: malformed message envelope: %w", err)
		}
	}
	return env, string(data[k+int(n):]), nil
}

// messageID is the MessageId of the message stored at seq in the queue
// with id: derived, so that a duplicate send answers with the original's.
func messageID(queueID string, seq uint64) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(queueID+"/"+strconv.FormatUint(seq, 10))).String()
}

// sequenceNumber is a FIFO message's SequenceNumber.
func sequenceNumber(seq uint64) string {
	return fmt.Sprintf("%020d", seq)
}

// md5Hex is the hex MD5 of s.
func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// attributesMD5 is MD5OfMessageAttributes as SQS computes it: over the
// attributes sorted by name, each as its name, its data type (both with a
// 4-byte big-endian length), a byte saying which value follows (1 string,
// 2 binary, 3 string list, 4 binary list) and the value(s) with their
// lengths. "" when there are none.
func attributesMD5(attrs map[string]MessageAttribute) string {
	if len(attrs) == 0 {
		return ""
	}
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	slices.Sort(names)
	h := md5.New()
	var n [4]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for _, name := range names {
		a := attrs[name]
		put([]byte(name))
		put([]byte(a.DataType))
		switch {
		case a.StringValue != "":
			h.Write([]byte{1})
			put([]byte(a.StringValue))
		case a.BinaryValue != nil:
			h.Write([]byte{2})
			put(a.BinaryValue)
		case len(a.StringListValues) > 0:
			h.Write([]byte{3})
			for _, s := range a.StringListValues {
				put([]byte(s))
			}
		case len(a.BinaryListValues) > 0:
			h.Write([]byte{4})
			for _, b := range a.BinaryListValues {
				put(b)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// traceAttributes is the system attributes a message carries, for their
// MD5.
func traceAttributes(trace string) map[string]MessageAttribute {
	if trace == "" {
		return nil
	}
	return map[string]MessageAttribute{"AWSTraceHeader": {DataType: "String", StringValue: trace}}
}

// contentDedupID is the MessageDeduplicationId of ContentBasedDeduplication:
// the SHA-256 of the body.
func contentDedupID(body string) string {
	sum := sha256.Sum256([]byte(body))
	return hex.EncodeToString(sum[:])
}

// validBodyRune reports whether SQS allows r in a message: #x9 #xA #xD
// #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF.
func validBodyRune(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

// checkText fails on a string with characters SQS does not allow.
func checkText(s, what string) error {
	if !utf8.ValidString(s) {
		return errInvalidMessageContents("Invalid binary character in %s: not UTF-8.", what)
	}
	for _, r := range s {
		if !validBodyRune(r) {
			return errInvalidMessageContents("Invalid binary character '#x%X' was found in the %s, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF", r, what)
		}
	}
	return nil
}

var (
	attributeNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,256}$`)
	dataTypeRE      = regexp.MustCompile(`^(String|Number|Binary)(\.[A-Za-z0-9_.-]+)?$`)
	dedupIDRE       = regexp.MustCompile(`^[!-~]{1,128}$`) // printable ASCII without space
)

// maxMessageAttributes bounds the attributes of a message.
const maxMessageAttributes = 10

// checkAttributes validates a message's attributes and returns the bytes
// they count toward the message's size.
func checkAttributes(attrs map[string]MessageAttribute) (int, error) {
	if len(attrs) > maxMessageAttributes {
		return 0, errInvalidParameter("Number of message attributes [%d] exceeds the allowed maximum [%d].", len(attrs), maxMessageAttributes)
	}
	size := 0
	for name, a := range attrs {
		lower := strings.ToLower(name)
		if !attributeNameRE.MatchString(name) || strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.") ||
			strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
			return 0, errInvalidParameter("Message (user) attribute '%s' name is invalid.", name)
		}
		if a.DataType == "" {
			return 0, errInvalidParameter("The message attribute '%s' must contain a non-empty attribute type.", name)
		}
		if !dataTypeRE.MatchString(a.DataType) || len(a.DataType) > 256 {
			return 0, errInvalidParameter("The type of message (user) attribute '%s' is invalid. You must use only the following supported type prefixes: Binary, Number, String.", name)
		}
		if len(a.StringListValues) > 0 || len(a.BinaryListValues) > 0 {
			return 0, errInvalidParameter("Message attribute list values in SendMessage operation are not supported.")
		}
		size += len(name) + len(a.DataType)
		if strings.HasPrefix(a.DataType, "Binary") {
			if len(a.BinaryValue) == 0 {
				return 0, errInvalidParameter("The message attribute '%s' with type 'Binary' must use field 'Binary'.", name)
			}
			size += len(a.BinaryValue)
			continue
		}
		if a.StringValue == "" {
			return 0, errInvalidParameter("The message attribute '%s' with type '%s' must use field 'String'.", name, a.DataType)
		}
		if strings.HasPrefix(a.DataType, "Number") {
			if _, err := strconv.ParseFloat(strings.TrimSpace(a.StringValue), 64); err != nil {
				return 0, errInvalidParameter("Can't cast the value of message (user) attribute '%s' to a number.", name)
			}
		}
		if err := checkText(a.StringValue, "message attribute '"+name+"'"); err != nil {
			return 0, err
		}
		size += len(a.StringValue)
	}
	return size, nil
}

// messageHeaders reads what the view needs from a message's headers.
func messageHeaders(h map[string][]string) (sent, visible, expires int64, group, dedup, sender, msgID, source string) {
	get := func(k string) string {
		if v := h[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	sent, _ = strconv.ParseInt(get(hdrSent), 10, 64)
	visible, _ = strconv.ParseInt(get(hdrVisible), 10, 64)
	expires, _ = strconv.ParseInt(get(hdrExpires), 10, 64)
	return sent, visible, expires, get(hdrGroup), get(hdrDedup), get(hdrSender), get(hdrMessageID), get(hdrSource)
}

// isStateConflict reports whether a compare-and-set of a message's state
// failed because another writer changed it first.
func isStateConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// isNotFound reports whether a stream read found no message.
func isNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrMsgNotFound)
}
