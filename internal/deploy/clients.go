package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	ltypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// NewClients returns clients of the API at endpoint (the address its
// answers name, e.g. queue URLs), whose connections dial makes, signed
// with creds.
func NewClients(endpoint, region string, creds aws.CredentialsProvider, dial func(ctx context.Context) (net.Conn, error)) *Clients {
	hc := &http.Client{Transport: &http.Transport{
		DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}}
	ep := aws.String(endpoint)
	// The API's own clients never retry: a failure is the deploy's to
	// report, and a retry would hide it behind a slower one.
	retry := func() aws.Retryer { return aws.NopRetryer{} }
	c := &Clients{
		Lambda: lambda.New(lambda.Options{Region: region, BaseEndpoint: ep, Credentials: creds, HTTPClient: hc, Retryer: retry()}),
		S3: s3.New(s3.Options{Region: region, BaseEndpoint: ep, Credentials: creds, HTTPClient: hc, UsePathStyle: true, Retryer: retry(),
			RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired}),
		SQS:     sqs.New(sqs.Options{Region: region, BaseEndpoint: ep, Credentials: creds, HTTPClient: hc, Retryer: retry()}),
		Events:  eventbridge.New(eventbridge.Options{Region: region, BaseEndpoint: ep, Credentials: creds, HTTPClient: hc, Retryer: retry()}),
		SNS:     sns.New(sns.Options{Region: region, BaseEndpoint: ep, Credentials: creds, HTTPClient: hc, Retryer: retry()}),
		Kinesis: kinesis.New(kinesis.Options{Region: region, BaseEndpoint: ep, Credentials: creds, HTTPClient: hc, Retryer: retry()}),
		SSM:     ssm.New(ssm.Options{Region: region, BaseEndpoint: ep, Credentials: creds, HTTPClient: hc, Retryer: retry()}),
	}
	signer := v4.NewSigner()
	c.Lamina = func(ctx context.Context, method, path string, in, out any) error {
		var body []byte
		if in != nil {
			var err error
			if body, err = json.Marshal(in); err != nil {
				return err
			}
		}
		req, err := http.NewRequestWithContext(ctx, method, endpoint+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		cred, err := creds.Retrieve(ctx)
		if err != nil {
			return err
		}
		sum := sha256Hex(body)
		if err := signer.SignHTTP(ctx, cred, req, sum, "lambda", region, time.Now()); err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return err
		}
		if resp.StatusCode >= 300 {
			var e struct{ Message, Type string }
			_ = json.Unmarshal(data, &e)
			if resp.StatusCode == http.StatusNotFound {
				return &ltypes.ResourceNotFoundException{Message: aws.String(e.Message)}
			}
			return fmt.Errorf("%s %s: %s (%s)", method, path, e.Message, resp.Status)
		}
		if out != nil {
			return json.Unmarshal(data, out)
		}
		return nil
	}
	return c
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Parameter returns the value of the SSM parameter called name: what
// template parameters of type AWS::SSM::Parameter::Value<…> resolve to
// (Engine.Parameter).
func (c *Clients) Parameter(ctx context.Context, name string) (string, error) {
	out, err := c.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if apiCode(err) == "ParameterNotFound" {
		return "", fmt.Errorf("parameter %s does not exist", name)
	}
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Parameter.Value), nil
}
