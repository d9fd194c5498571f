package awsproto

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/lamina-project/lamina"
)

// Shapes in the style of SQS's model: flattened lists and maps with their
// own member names, a nested structure value, blobs.
type attrValue struct {
	DataType         string
	StringValue      string   `json:",omitempty"`
	BinaryValue      []byte   `json:",omitempty"`
	StringListValues []string `json:",omitempty" query:"StringListValue,flat"`
}

type entry struct {
	Id string
	body
}

// body is embedded: its fields are entry's.
type body struct {
	MessageBody string
	Delay       *int
}

type sendInput struct {
	QueueUrl   string
	Entries    []entry              `query:"SendEntry,flat"`
	Names      []string             `query:"AttributeName,flat"`
	Members    []string             // not flattened: Members.member.N
	Attributes map[string]string    `query:"Attribute,flat,key=Name,value=Value"`
	Tags       map[string]string    `json:"tags" query:"Tag,flat,key=Key,value=Value"`
	MsgAttrs   map[string]attrValue `query:"MessageAttribute,flat,key=Name,value=Value"`
	Entry      map[string]string    // not flattened: Entry.entry.N.key/value
	Wait       int
	Fifo       bool
	Blob       []byte
}

func TestDecodeQuery(t *testing.T) {
	q := url.Values{
		"QueueUrl":                                   {"http://h/1/q"},
		"SendEntry.1.Id":                             {"a"},
		"SendEntry.1.MessageBody":                    {"x y"},
		"SendEntry.2.Id":                             {"b"},
		"SendEntry.2.Delay":                          {"5"},
		"AttributeName.1":                            {"All"},
		"AttributeName.2":                            {"Policy"},
		"Members.member.1":                           {"m1"},
		"Attribute.1.Name":                           {"VisibilityTimeout"},
		"Attribute.1.Value":                          {"30"},
		"Tag.1.Key":                                  {"team"},
		"Tag.1.Value":                                {"blue"},
		"MessageAttribute.1.Name":                    {"color"},
		"MessageAttribute.1.Value.DataType":          {"String"},
		"MessageAttribute.1.Value.StringValue":       {"red"},
		"MessageAttribute.1.Value.StringListValue.1": {"l1"},
		"MessageAttribute.2.Name":                    {"raw"},
		"MessageAttribute.2.Value.DataType":          {"Binary"},
		"MessageAttribute.2.Value.BinaryValue":       {"AAEC"},
		"Entry.entry.1.key":                          {"k"},
		"Entry.entry.1.value":                        {"v"},
		"Wait":                                       {"20"},
		"Fifo":                                       {"true"},
		"Blob":                                       {"aGk="},
	}
	var in sendInput
	if err := decodeQuery(q, &in); err != nil {
		t.Fatal(err)
	}
	five := 5
	want := sendInput{
		QueueUrl:   "http://h/1/q",
		Entries:    []entry{{Id: "a", body: body{MessageBody: "x y"}}, {Id: "b", body: body{Delay: &five}}},
		Names:      []string{"All", "Policy"},
		Members:    []string{"m1"},
		Attributes: map[string]string{"VisibilityTimeout": "30"},
		Tags:       map[string]string{"team": "blue"},
		MsgAttrs: map[string]attrValue{
			"color": {DataType: "String", StringValue: "red", StringListValues: []string{"l1"}},
			"raw":   {DataType: "Binary", BinaryValue: []byte{0, 1, 2}},
		},
		Entry: map[string]string{"k": "v"},
		Wait:  20, Fifo: true, Blob: []byte("hi"),
	}
	if !reflect.DeepEqual(in, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", in, want)
	}
}

func TestDecodeQueryRejectsBadNumbers(t *testing.T) {
	var in sendInput
	err := decodeQuery(url.Values{"Wait": {"soon"}}, &in)
	var e *Error
	if !errors.As(err, &e) || e.Status != 400 || e.queryCode() != "InvalidParameterValue" {
		t.Fatalf("err = %v, want 400 InvalidParameterValue", err)
	}
}

type receiveOutput struct {
	Messages []message `json:",omitempty" query:"Message,flat"`
	Next     string    `json:",omitempty"`
}

type message struct {
	MessageId         string
	Body              string
	Attributes        map[string]string    `json:",omitempty" query:"Attribute,flat,key=Name,value=Value"`
	MessageAttributes map[string]attrValue `json:",omitempty" query:"MessageAttribute,flat,key=Name,value=Value"`
	Fault             bool
	Urls              []string `json:",omitempty"`
}

func TestEncodeQueryResult(t *testing.T) {
	var b bytes.Buffer
	out := &receiveOutput{Messages: []message{{
		MessageId: "m1", Body: "a<b&\"c\"\n",
		Attributes:        map[string]string{"SentTimestamp": "1", "ApproximateReceiveCount": "2"},
		MessageAttributes: map[string]attrValue{"k": {DataType: "Binary", BinaryValue: []byte{1}}},
		Urls:              []string{"u1", "u2"},
	}}}
	encodeQueryResult(&b, reflect.ValueOf(out))
	want := `<Message><MessageId>m1</MessageId><Body>a&lt;b&amp;&#34;c&#34;&#xA;</Body>` +
		`<Attribute><Name>ApproximateReceiveCount</Name><Value>2</Value></Attribute>` +
		`<Attribute><Name>SentTimestamp</Name><Value>1</Value></Attribute>` +
		`<MessageAttribute><Name>k</Name><Value><DataType>Binary</DataType><BinaryValue>AQ==</BinaryValue></Value></MessageAttribute>` +
		`<Fault>false</Fault><Urls><member>u1</member><member>u2</member></Urls></Message>`
	if b.String() != want {
		t.Fatalf("encoded\n%s\nwant\n%s", b.String(), want)
	}
	// What is encoded reads back as XML.
	var doc struct {
		Message struct {
			Body string
		}
	}
	if err := xml.Unmarshal([]byte("<R>"+b.String()+"</R>"), &doc); err != nil || doc.Message.Body != "a<b&\"c\"\n" {
		t.Fatalf("round trip: %v %q", err, doc.Message.Body)
	}
}

// fakeAdmission admits every request signed with "good", as the frontend
// would, and records what it was asked.
type fakeAdmission struct {
	gates    []Gate
	released int
}

func (a *fakeAdmission) Admit(w http.ResponseWriter, r *http.Request, g Gate) (*Admitted, error) {
	a.gates = append(a.gates, g)
	adm := &Admitted{Operation: g.Operation, Release: func() { a.released++ }}
	if !strings.Contains(r.Header.Get("Authorization"), "Signature=good") {
		return adm, &lamina.Error{Status: 403, Code: "InvalidSignatureException", Message: "bad signature"}
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, g.MaxBody+1))
	if int64(len(body)) > g.MaxBody {
		return adm, &lamina.Error{Status: 413, Code: "RequestEntityTooLargeException", Message: "too large"}
	}
	adm.Body, adm.AccessKeyID = body, "AKID"
	if g.Resolve != nil {
		var err error
		if adm.Operation, err = g.Resolve(body); err != nil {
			return adm, err
		}
	}
	return adm, nil
}

type echoInput struct {
	QueueName  string
	Attributes map[string]string `query:"Attribute,flat,key=Name,value=Value"`
}

type echoOutput struct {
	QueueUrl string
	Names    []string `json:",omitempty" query:"Name,flat"`
}

func testService() *Service {
	s := &Service{SigningName: "sqs", TargetPrefix: "AmazonSQS", JSONVersion: "1.0", ErrorNamespace: "com.amazonaws.sqs#",
		QueryCompatible: true, QueryVersion: "2012-11-05", XMLNamespace: "http://queue.amazonaws.com/doc/2012-11-05/"}
	s.Handle(
		Op("CreateQueue", func(c *Call, in *echoInput) (*echoOutput, error) {
			if in.QueueName == "" {
				return nil, &Error{Status: 400, Code: "QueueDoesNotExist", QueryCode: "AWS.SimpleQueueService.NonExistentQueue", Message: "no queue"}
			}
			if in.QueueName == "boom" {
				return nil, errors.New("disk on fire")
			}
			return &echoOutput{QueueUrl: "http://" + c.Request.Host + "/1/" + in.QueueName + "/" + in.Attributes["A"]}, nil
		}),
		Op("DeleteQueue", func(c *Call, in *echoInput) (*Empty, error) { return &Empty{}, nil }),
	)
	return s
}

func testMux(adm *fakeAdmission, extra ...*Service) *Mux {
	m := NewMux(MuxConfig{Admission: adm, Fallback: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Fallback", "lambda")
		w.WriteHeader(http.StatusTeapot)
	})})
	m.Register(testService())
	for _, s := range extra {
		m.Register(s)
	}
	return m
}

func serve(m *Mux, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	m.ServeHTTP(w, r)
	return w
}

func signed(r *http.Request, service, signature string) *http.Request {
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/"+service+"/aws4_request, SignedHeaders=host, Signature="+signature)
	return r
}

func TestMuxJSON(t *testing.T) {
	adm := &fakeAdmission{}
	m := testMux(adm)
	r := signed(httptest.NewRequest("POST", "/", strings.NewReader(`{"QueueName":"q","Attributes":{"A":"1"}}`)), "sqs", "good")
	r.Header.Set("X-Amz-Target", "AmazonSQS.CreateQueue")
	w := serve(m, r)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/x-amz-json-1.0" || w.Header().Get("x-amzn-RequestId") == "" {
		t.Fatalf("answer %d %v", w.Code, w.Header())
	}
	if got := w.Body.String(); got != `{"QueueUrl":"http://example.com/1/q/1"}` {
		t.Fatalf("body %s", got)
	}
	if g := adm.gates[0]; g.Service != "sqs" || g.Operation != "CreateQueue" || g.MaxBody != DefaultMaxBody || adm.released != 1 {
		t.Fatalf("gate %+v released %d", g, adm.released)
	}

	// An error carries __type with the namespace and, the service being
	// query compatible, the query code.
	r = signed(httptest.NewRequest("POST", "/", strings.NewReader(`{}`)), "sqs", "good")
	r.Header.Set("X-Amz-Target", "AmazonSQS.CreateQueue")
	w = serve(m, r)
	var e struct{ Type, Message string }
	_ = json.Unmarshal(w.Body.Bytes(), &struct {
		Type    *string `json:"__type"`
		Message *string `json:"message"`
	}{&e.Type, &e.Message})
	if w.Code != 400 || e.Type != "com.amazonaws.sqs#QueueDoesNotExist" || e.Message != "no queue" ||
		w.Header().Get("X-Amzn-Query-Error") != "AWS.SimpleQueueService.NonExistentQueue;Sender" ||
		w.Header().Get("X-Amzn-ErrorType") != "QueueDoesNotExist" {
		t.Fatalf("error %d %v %s", w.Code, w.Header(), w.Body)
	}

	// Lamina's own failure is an InternalFailure without its detail.
	r = signed(httptest.NewRequest("POST", "/", strings.NewReader(`{"QueueName":"boom"}`)), "sqs", "good")
	r.Header.Set("X-Amz-Target", "AmazonSQS.CreateQueue")
	if w = serve(m, r); w.Code != 500 || strings.Contains(w.Body.String(), "fire") || !strings.Contains(w.Body.String(), "InternalFailure") {
		t.Fatalf("internal %d %s", w.Code, w.Body)
	}

	// The admission's refusal is written in the service's shape.
	r = signed(httptest.NewRequest("POST", "/", strings.NewReader(`{}`)), "sqs", "bad")
	r.Header.Set("X-Amz-Target", "AmazonSQS.DeleteQueue")
	if w = serve(m, r); w.Code != 403 || !strings.Contains(w.Body.String(), `"__type":"com.amazonaws.sqs#InvalidSignatureException"`) {
		t.Fatalf("refused %d %s", w.Code, w.Body)
	}

	// An unknown operation of a known prefix, and an unknown prefix.
	for _, target := range []string{"AmazonSQS.Nope", "Nobody_2020.Nope"} {
		r = signed(httptest.NewRequest("POST", "/", strings.NewReader(`{}`)), "sqs", "good")
		r.Header.Set("X-Amz-Target", target)
		if w = serve(m, r); w.Code != 400 || !strings.Contains(w.Body.String(), "UnknownOperationException") {
			t.Fatalf("%s: %d %s", target, w.Code, w.Body)
		}
	}
}

func TestMuxQuery(t *testing.T) {
	adm := &fakeAdmission{}
	m := testMux(adm)
	form := "Action=CreateQueue&Version=2012-11-05&QueueName=q&Attribute.1.Name=A&Attribute.1.Value=7"
	r := signed(httptest.NewRequest("POST", "/1/q", strings.NewReader(form)), "sqs", "good")
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	w := serve(m, r)
	id := w.Header().Get("x-amzn-RequestId")
	want := `<?xml version="1.0"?><CreateQueueResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">` +
		`<CreateQueueResult><QueueUrl>http://example.com/1/q/7</QueueUrl></CreateQueueResult>` +
		`<ResponseMetadata><RequestId>` + id + `</RequestId></ResponseMetadata></CreateQueueResponse>`
	if w.Code != 200 || w.Body.String() != want {
		t.Fatalf("answer %d %s", w.Code, w.Body)
	}
	if g := adm.gates[0]; g.Operation != "" || g.Resolve == nil || g.Service != "sqs" {
		t.Fatalf("gate %+v", g)
	}

	// No Result element for an operation without output.
	r = signed(httptest.NewRequest("POST", "/", strings.NewReader("Action=DeleteQueue&QueueUrl=x")), "sqs", "good")
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if w = serve(m, r); w.Code != 200 || strings.Contains(w.Body.String(), "Result") || !strings.Contains(w.Body.String(), "<DeleteQueueResponse") {
		t.Fatalf("delete %d %s", w.Code, w.Body)
	}

	// Errors: the query code, Sender, the request id.
	for _, tc := range []struct{ form, code string }{
		{"Action=CreateQueue", "AWS.SimpleQueueService.NonExistentQueue"},
		{"Action=Nope", "InvalidAction"},
		{"Version=2012-11-05", "MissingAction"},
	} {
		r = signed(httptest.NewRequest("POST", "/", strings.NewReader(tc.form)), "sqs", "good")
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w = serve(m, r)
		var doc queryErrorResponse
		if err := xml.Unmarshal(w.Body.Bytes(), &doc); err != nil || w.Code != 400 || doc.Error.Code != tc.code ||
			doc.Error.Type != "Sender" || doc.RequestID != w.Header().Get("x-amzn-RequestId") {
			t.Fatalf("%s: %d %s (%v)", tc.form, w.Code, w.Body, err)
		}
	}

	// The Action may come in the URL.
	r = signed(httptest.NewRequest("GET", "/?Action=DeleteQueue", nil), "sqs", "good")
	if w = serve(m, r); w.Code != 200 {
		t.Fatalf("GET %d %s", w.Code, w.Body)
	}
}

func TestMuxRoutesByScopeAndFallsBack(t *testing.T) {
	adm := &fakeAdmission{}
	var routed []string
	s3 := &Service{SigningName: "s3", REST: RESTXML, Route: func(r *http.Request) *Operation {
		bucket := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0]
		if host, _, ok := strings.Cut(r.Host, ".s3."); ok {
			bucket = host
		}
		if bucket == "missing" {
			return nil
		}
		return Raw("GetObject", func(c *Call, w http.ResponseWriter) error {
			routed = append(routed, bucket)
			if bucket == "private" {
				return &Error{Status: 403, Code: "AccessDenied", Message: "Access Denied"}
			}
			w.WriteHeader(200)
			return nil
		})
	}}
	m := testMux(adm, s3)

	// Path-style and virtual-host requests are both scoped to s3.
	w := serve(m, signed(httptest.NewRequest("GET", "/photos/cat.jpg", nil), "s3", "good"))
	r := signed(httptest.NewRequest("GET", "/cat.jpg", nil), "s3", "good")
	r.Host = "albums.s3.us-east-1.localhost:9000"
	w2 := serve(m, r)
	if w.Code != 200 || w2.Code != 200 || !reflect.DeepEqual(routed, []string{"photos", "albums"}) || w.Header().Get("x-amz-request-id") == "" {
		t.Fatalf("s3 routes %d %d %v", w.Code, w2.Code, routed)
	}
	// A presigned URL carries its scope in the query.
	r = httptest.NewRequest("GET", "/private/k?X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=x", nil)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, Signature=good")
	w = serve(m, r)
	var doc restXMLError
	if err := xml.Unmarshal(w.Body.Bytes()[len(xml.Header):], &doc); err != nil || w.Code != 403 || doc.Code != "AccessDenied" || doc.Resource != "/private/k" {
		t.Fatalf("s3 error %d %s %v", w.Code, w.Body, err)
	}
	if w = serve(m, signed(httptest.NewRequest("GET", "/missing", nil), "s3", "good")); w.Code != 501 {
		t.Fatalf("no route: %d", w.Code)
	}

	// The Lambda API takes what no service claims.
	for _, r := range []*http.Request{
		signed(httptest.NewRequest("GET", "/2015-03-31/functions", nil), "lambda", "good"),
		httptest.NewRequest("POST", "/", strings.NewReader("Action=ListQueues")),
	} {
		if w := serve(m, r); w.Code != http.StatusTeapot || w.Header().Get("X-Fallback") != "lambda" {
			t.Fatalf("%s %s: %d", r.Method, r.URL, w.Code)
		}
	}
}
