package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The lean clients: they sign one Invoke request with aws-sdk-go-v2's SigV4
// signer and send that same request (same body, same X-Amz-Date) again and
// again, so that the client costs next to nothing per call. A signature is
// valid for 5 minutes of clock skew; the request is signed again every
// minute.

// resignEvery is how long one signed request is replayed.
const resignEvery = time.Minute

// presigned is an Invoke request signed once.
type presigned struct {
	at     time.Time
	header http.Header // for net/http
	wire   []byte      // the whole HTTP/1.1 request, for raw connections
}

// presigner keeps a signed Invoke request of one function, fresh.
type presigner struct {
	url  *url.URL
	body []byte
	cur  atomic.Pointer[presigned]
	mu   sync.Mutex
}

func newPresigner(endpoint, function string, body []byte) (*presigner, error) {
	u, err := url.Parse(endpoint + "/2015-03-31/functions/" + function + "/invocations")
	if err != nil {
		return nil, err
	}
	p := &presigner{url: u, body: body}
	if _, err := p.get(); err != nil {
		return nil, err
	}
	return p, nil
}

// get returns the current signed request, signing a new one when it is
// older than resignEvery.
func (p *presigner) get() (*presigned, error) {
	if s := p.cur.Load(); s != nil && time.Since(s.at) < resignEvery {
		return s, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.cur.Load(); s != nil && time.Since(s.at) < resignEvery {
		return s, nil
	}
	s, err := p.sign(time.Now())
	if err != nil {
		return nil, err
	}
	p.cur.Store(s)
	return s, nil
}

func (p *presigner) sign(now time.Time) (*presigned, error) {
	req, err := http.NewRequest(http.MethodPost, p.url.String(), bytes.NewReader(p.body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(p.body)
	creds := aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "lambda", region, now); err != nil {
		return nil, err
	}
	var wire bytes.Buffer
	fmt.Fprintf(&wire, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", p.url.RequestURI(), p.url.Host, len(p.body))
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(&wire, "%s: %s\r\n", k, v)
		}
	}
	wire.WriteString("\r\n")
	wire.Write(p.body)
	return &presigned{at: now, header: req.Header, wire: wire.Bytes()}, nil
}

// ---------------------------------------------------------------------------
// net/http

// plainClient posts one event with net/http over keep-alive connections:
// the pre-signed request for Lamina, or an unsigned one for RIE.
type plainClient struct {
	transport *http.Transport
	url       *url.URL
	body      []byte
	signer    *presigner  // nil: send header as is
	header    http.Header // used when signer is nil
}

func newTransport() *http.Transport {
	return &http.Transport{
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
}

// newSignedPlainClient invokes function on Lamina at endpoint.
func newSignedPlainClient(endpoint, function string) (*plainClient, error) {
	signer, err := newPresigner(endpoint, function, emptyEvent)
	if err != nil {
		return nil, err
	}
	return &plainClient{transport: newTransport(), url: signer.url, body: emptyEvent, signer: signer}, nil
}

// newRIEClient invokes the function RIE at addr serves.
func newRIEClient(addr string) (*plainClient, error) {
	u, err := url.Parse("http://" + addr + "/2015-03-31/functions/function/invocations")
	if err != nil {
		return nil, err
	}
	return &plainClient{transport: newTransport(), url: u, body: emptyEvent,
		header: http.Header{"Content-Type": {"application/json"}}}, nil
}

func (c *plainClient) invoke() error {
	header := c.header
	if c.signer != nil {
		s, err := c.signer.get()
		if err != nil {
			return err
		}
		header = s.header
	}
	req := &http.Request{
		Method:        http.MethodPost,
		URL:           c.url,
		Host:          c.url.Host,
		Header:        header, // only read by the transport
		Body:          io.NopCloser(bytes.NewReader(c.body)),
		ContentLength: int64(len(c.body)),
		Proto:         "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "" {
		return fmt.Errorf("status %d, function error %q: %s", resp.StatusCode, resp.Header.Get("X-Amz-Function-Error"), body)
	}
	return nil
}

func (c *plainClient) close() { c.transport.CloseIdleConnections() }

// ---------------------------------------------------------------------------
// Raw HTTP/1.1

// rawConn writes the pre-signed request's bytes on one keep-alive TCP
// connection and reads the response with a minimal HTTP/1.1 parser
// (status line, Content-Length, X-Amz-Function-Error).
type rawConn struct {
	addr   string
	signer *presigner
	conn   net.Conn
	br     *bufio.Reader
}

func newRawConn(addr string, signer *presigner) *rawConn {
	return &rawConn{addr: addr, signer: signer}
}

func (c *rawConn) invoke() error {
	s, err := c.signer.get()
	if err != nil {
		return err
	}
	reused := c.conn != nil
	err = c.roundTrip(s.wire)
	if err != nil && reused && errors.Is(err, errConnClosed) {
		c.close() // the server closed an idle connection: once more on a new one
		err = c.roundTrip(s.wire)
	}
	return err
}

var errConnClosed = errors.New("connection closed")

func (c *rawConn) roundTrip(wire []byte) error {
	if c.conn == nil {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			return err
		}
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 4096)
	}
	if _, err := c.conn.Write(wire); err != nil {
		c.close()
		return fmt.Errorf("%w: %v", errConnClosed, err)
	}
	status, err := c.br.ReadSlice('\n')
	if err != nil {
		c.close()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: %v", errConnClosed, err)
		}
		return err
	}
	length, closeAfter, funcErr := -1, false, ""
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			c.close()
			return err
		}
		if len(line) <= 2 {
			break
		}
		k, v, _ := strings.Cut(strings.TrimSpace(string(line)), ":")
		v = strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "content-length":
			length, _ = strconv.Atoi(v)
		case "connection":
			closeAfter = strings.EqualFold(v, "close")
		case "x-amz-function-error":
			funcErr = v
		case "transfer-encoding":
			c.close()
			return fmt.Errorf("unexpected Transfer-Encoding %q", v)
		}
	}
	if length < 0 {
		c.close()
		return errors.New("response without Content-Length")
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(c.br, body); err != nil {
		c.close()
		return err
	}
	if closeAfter {
		c.close()
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) || funcErr != "" {
		return fmt.Errorf("%s (function error %q): %s", bytes.TrimSpace(status), funcErr, body)
	}
	return nil
}

func (c *rawConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.br = nil, nil
	}
}
