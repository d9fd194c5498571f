// Package awsproto is the AWS wire protocols that Lamina's services beside
// Lambda share, and the dispatcher that routes a request on the API
// listener to its service:
//
//   - JSON 1.0 and 1.1 (POST / with X-Amz-Target: Prefix.Operation), with
//     __type errors, and x-amzn-query-error for services whose JSON
//     protocol replaced a query protocol (SQS);
//   - query (form-encoded Action=Operation&Version=…, XML replies with
//     ResponseMetadata/RequestId, ErrorResponse errors);
//   - REST-JSON and REST-XML, whose services route requests themselves by
//     method, path and host (S3), and write their answers themselves; the
//     package writes their errors.
//
// A service states its protocols (a Service), and its operations with
// their input and output types (Op); it writes no plumbing. One Go type
// serves both of a service's JSON and query protocols: encoding/json reads
// and writes it for JSON, its `query` tags say how the query protocol names
// its members (see query.go).
//
// Every request passes the node's Admission before its operation runs —
// SigV4 from the headers first, then the body within the operation's limit
// and the listener's budget and minimum rate, then the signature over the
// body — exactly as the Lambda API's requests do. The Mux is the API
// listener's handler: it routes a request by what AWS clients send (the
// X-Amz-Target prefix; the credential scope's service name for query and
// REST services) and hands everything else to the Lambda API.
package awsproto

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"

	"github.com/lamina-project/lamina/internal/sigv4"
)

// Protocol is an AWS wire protocol.
type Protocol int

// The protocols a Service may speak.
const (
	JSON Protocol = iota + 1 // JSON 1.0 or 1.1, by Service.JSONVersion
	Query
	RESTJSON
	RESTXML
)

// DefaultMaxBody bounds the body of an operation that states no limit.
const DefaultMaxBody = 1 << 20

// Service is one AWS service as its clients see it on the wire.
type Service struct {
	// SigningName is the service's name in SigV4 credential scopes and in
	// authorization, e.g. "sqs".
	SigningName string

	// TargetPrefix, for a service of a JSON protocol, is what X-Amz-Target
	// holds before ".Operation", e.g. "AmazonSQS".
	TargetPrefix string
	// JSONVersion is "1.0" or "1.1".
	JSONVersion string
	// ErrorNamespace prefixes __type in JSON errors, e.g.
	// "com.amazonaws.sqs#"; clients drop it.
	ErrorNamespace string
	// QueryCompatible makes JSON errors carry x-amzn-query-error, for a
	// service whose JSON protocol replaced its query protocol.
	QueryCompatible bool

	// QueryVersion, when set, serves the query protocol (the Version
	// clients send, e.g. "2012-11-05") to requests scoped to SigningName
	// without an X-Amz-Target.
	QueryVersion string
	// XMLNamespace is the xmlns of query replies.
	XMLNamespace string

	// Route, for a REST service, returns the operation a request scoped to
	// SigningName is for (by its method, host, path and query), or nil
	// when it has none. Its operations are Raw.
	Route func(r *http.Request) *Operation
	// REST is the protocol of Route's operations: RESTJSON or RESTXML.
	REST Protocol
	// MapError, when set, rewrites the errors of the service's REST
	// operations, and of their admission (authentication), into the
	// service's own codes before they are written.
	MapError func(*Error) *Error

	ops     map[string]*Operation
	maxBody int64 // of any operation, for query requests
}

// Handle adds operations to the service.
func (s *Service) Handle(ops ...*Operation) {
	if s.ops == nil {
		s.ops = map[string]*Operation{}
	}
	for _, op := range ops {
		s.ops[op.Name] = op
		s.maxBody = max(s.maxBody, op.maxBody())
	}
}

// Operation returns the operation called name, or nil.
func (s *Service) Operation(name string) *Operation { return s.ops[name] }

// jsonContentType is the content type of the service's JSON protocol.
func (s *Service) jsonContentType() string {
	return "application/x-amz-json-" + s.JSONVersion
}

// Operation is one operation of a service.
type Operation struct {
	// Name is the operation's name as AWS spells it, e.g. "SendMessage".
	Name string
	// MaxBody bounds the request body; zero means DefaultMaxBody.
	MaxBody int64
	// BodyCopies is how many times its body's size the operation holds in
	// memory at its peak, reserved from the listener's body budget; zero
	// means 1.
	BodyCopies int64
	// Stream makes the operation read its body itself (S3's objects): the
	// admission authenticates the request and checks its signature against
	// the payload it declares (Call.Auth), reads nothing, and the operation
	// reads Call.BodyReader and checks the body against that declaration.
	Stream bool
	serve  func(c *Call, w http.ResponseWriter) error
}

func (op *Operation) maxBody() int64 {
	if op.MaxBody > 0 {
		return op.MaxBody
	}
	return DefaultMaxBody
}

// Streaming makes the operation read its body itself (see Stream), and
// returns it.
func (op *Operation) Streaming() *Operation {
	op.Stream = true
	return op
}

// Bodies sets the operation's body limit and the copies of its body it
// holds at once, and returns it.
func (op *Operation) Bodies(maxBody, copies int64) *Operation {
	op.MaxBody, op.BodyCopies = maxBody, copies
	return op
}

// Call is one request to an operation, admitted.
type Call struct {
	// Request is the HTTP request; its body has been read into Body.
	Request *http.Request
	Body    []byte
	// RequestID is the request's id, sent back in x-amzn-RequestId (or
	// the query reply's RequestId).
	RequestID string
	Protocol  Protocol
	Service   *Service
	Operation string
	// AccessKeyID is the key the request was signed with, and Identity
	// what the key lookup said it belongs to (a *credentials.Session for
	// temporary credentials, nil for the admin key pair).
	AccessKeyID string
	Identity    any
	// Auth and BodyReader, for a Stream operation, are the request's
	// authentication (whose signature was checked against the payload the
	// request declares) and its unread body, read within the listener's
	// minimum rate.
	Auth       *sigv4.Auth
	BodyReader io.Reader

	form url.Values // the parameters of a query request
}

// Context is the request's context.
func (c *Call) Context() context.Context { return c.Request.Context() }

// Empty is the input or output of an operation that has none: its JSON is
// {} and its query reply has no Result element.
type Empty struct{}

// Op declares an operation whose input and output are shapes of the
// service's JSON and query protocols: the request is decoded into an In,
// handle's *Out is encoded as the reply. Errors handle returns are written
// in the request's protocol (see Error).
func Op[In, Out any](name string, handle func(c *Call, in *In) (*Out, error)) *Operation {
	op := &Operation{Name: name}
	op.serve = func(c *Call, w http.ResponseWriter) error {
		in := new(In)
		if err := c.decode(in); err != nil {
			return err
		}
		out, err := handle(c, in)
		if err != nil {
			return err
		}
		return c.reply(w, out)
	}
	return op
}

// Raw declares an operation that writes its answer itself (a REST
// operation, or an adapter of older handlers); errors it returns are
// written in the request's protocol, if it has written nothing yet.
func Raw(name string, serve func(c *Call, w http.ResponseWriter) error) *Operation {
	return &Operation{Name: name, serve: serve}
}

// decode reads the request into in.
func (c *Call) decode(in any) error {
	switch c.Protocol {
	case Query:
		return decodeQuery(c.form, in)
	default:
		if len(bytes.TrimSpace(c.Body)) == 0 {
			return nil
		}
		if err := json.Unmarshal(c.Body, in); err != nil {
			return &Error{Status: http.StatusBadRequest, Code: "SerializationException", QueryCode: "MalformedInput",
				Message: "Could not parse the request body: " + err.Error()}
		}
		return nil
	}
}

// reply writes out as the operation's answer in the request's protocol.
func (c *Call) reply(w http.ResponseWriter, out any) error {
	switch c.Protocol {
	case Query:
		var buf bytes.Buffer
		buf.WriteString(`<?xml version="1.0"?>`)
		buf.WriteString("<" + c.Operation + "Response")
		if c.Service.XMLNamespace != "" {
			buf.WriteString(` xmlns="` + c.Service.XMLNamespace + `"`)
		}
		buf.WriteByte('>')
		if v := reflect.ValueOf(out); v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Type() != reflect.TypeFor[Empty]() {
			open(&buf, c.Operation+"Result")
			encodeQueryResult(&buf, v)
			closeTag(&buf, c.Operation+"Result")
		}
		buf.WriteString("<ResponseMetadata>")
		element(&buf, "RequestId", c.RequestID)
		buf.WriteString("</ResponseMetadata>")
		closeTag(&buf, c.Operation+"Response")
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(buf.Bytes())
		return nil
	default:
		data, err := json.Marshal(out)
		if err != nil {
			return err
		}
		if string(data) == "null" {
			data = []byte("{}")
		}
		w.Header().Set("Content-Type", c.Service.jsonContentType())
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(data)
		return nil
	}
}
