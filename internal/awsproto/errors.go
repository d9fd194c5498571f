package awsproto

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"

	"github.com/lamina-project/lamina"
)

// Error is a failure in AWS's terms, written in the shape of the protocol
// the request came in:
//
//   - JSON 1.0/1.1: the status, X-Amzn-ErrorType and {"__type","message"},
//     where __type is the service's error namespace and Code; a service
//     whose JSON protocol is compatible with its older query protocol (SQS)
//     also sends x-amzn-query-error: QueryCode;Sender, from which botocore,
//     aws-sdk-go-v2 and the JS SDK take the code they show;
//   - query: <ErrorResponse><Error><Type>Sender</Type><Code>QueryCode…;
//   - REST-XML: <Error><Code>Code</Code><Message>…</Message><RequestId>….
type Error struct {
	Status int
	// Code is the error's shape name, e.g. "QueueDoesNotExist".
	Code string
	// QueryCode is the code of the query protocol, e.g.
	// "AWS.SimpleQueueService.NonExistentQueue"; empty means Code.
	QueryCode string
	Message   string
	// Receiver marks Lamina's own failures (5xx); the rest are the
	// caller's (Sender).
	Receiver bool
}

// Error returns "Code: Message".
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// queryCode is the code the query protocol and x-amzn-query-error carry.
func (e *Error) queryCode() string {
	if e.QueryCode != "" {
		return e.QueryCode
	}
	return e.Code
}

// fault is "Sender" or "Receiver".
func (e *Error) fault() string {
	if e.Receiver {
		return "Receiver"
	}
	return "Sender"
}

// Errorf returns a caller's error (Sender) with status and code.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// internalFailure is 500 InternalFailure, which answers Lamina's own
// failures; its message names the request, whose details are logged.
func internalFailure(requestID string) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "InternalFailure", Receiver: true,
		Message: "An internal error occurred (request " + requestID + ")."}
}

// UnknownOperation is 400 UnknownOperationException for an X-Amz-Target or
// Action the service does not have; the query protocol calls it
// InvalidAction.
func UnknownOperation(op string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "UnknownOperationException", QueryCode: "InvalidAction",
		Message: "The action " + op + " is not valid for this endpoint."}
}

// MissingParameter is 400 for a required parameter that was not given.
func MissingParameter(name string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "MissingParameter",
		Message: "The request must contain the parameter " + name + "."}
}

// InvalidParameterValue is 400 for a parameter whose value is not valid;
// the JSON protocol calls it ValidationException.
func InvalidParameterValue(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "ValidationException", QueryCode: "InvalidParameterValue",
		Message: fmt.Sprintf(format, args...)}
}

// ServiceUnavailable is 503: Lamina cannot serve the request now (its
// storage is unavailable or full); the SDKs retry it.
func ServiceUnavailable(format string, args ...any) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Receiver: true,
		Message: fmt.Sprintf(format, args...)}
}

// asError turns what an operation or the admission returned into an
// *Error: an *Error as it is, a *lamina.Error (the admission's refusals:
// authentication, body limits) with its code, anything else nil (Lamina's
// own failure, which the caller logs).
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var le *lamina.Error
	if errors.As(err, &le) {
		return &Error{Status: le.Status, Code: le.Code, Message: le.Message, Receiver: le.Status >= 500}
	}
	return nil
}

// writeJSONError writes e as the JSON protocols do.
func writeJSONError(w http.ResponseWriter, s *Service, e *Error) {
	h := w.Header()
	h.Set("Content-Type", s.jsonContentType())
	h.Set("X-Amzn-ErrorType", e.Code)
	if s.QueryCompatible {
		h.Set("X-Amzn-Query-Error", e.queryCode()+";"+e.fault())
	}
	body, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{s.ErrorNamespace + e.Code, e.Message})
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// queryErrorResponse is the query protocol's error document.
type queryErrorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"`
	Error   struct {
		Type    string
		Code    string
		Message string
		Detail  struct{}
	}
	RequestID string `xml:"RequestId"`
}

// writeQueryError writes e as the query protocol does.
func writeQueryError(w http.ResponseWriter, s *Service, requestID string, e *Error) {
	doc := queryErrorResponse{Xmlns: s.XMLNamespace, RequestID: requestID}
	doc.Error.Type, doc.Error.Code, doc.Error.Message = e.fault(), e.queryCode(), e.Message
	writeXML(w, e.Status, doc)
}

// restXMLError is REST-XML's (S3's) error document.
type restXMLError struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	Resource  string `xml:",omitempty"`
	RequestID string `xml:"RequestId"`
}

// writeRESTXMLError writes e as REST-XML services do. A HEAD answer has no
// body, so clients take the status for the code.
func writeRESTXMLError(w http.ResponseWriter, r *http.Request, requestID string, e *Error) {
	if r.Method == http.MethodHead {
		w.WriteHeader(e.Status)
		return
	}
	writeXML(w, e.Status, restXMLError{Code: e.Code, Message: e.Message, Resource: r.URL.Path, RequestID: requestID})
}

// writeRESTJSONError writes e as REST-JSON services do.
func writeRESTJSONError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-ErrorType", e.Code)
	body, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{e.Message})
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// writeXML writes doc as an XML document with status.
func writeXML(w http.ResponseWriter, status int, doc any) {
	data, err := xml.Marshal(doc)
	if err != nil {
		status, data = http.StatusInternalServerError, nil
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(data)
}
