package cli

import (
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/lamina-project/lamina/internal/credentials"
	"github.com/lamina-project/lamina/internal/sdkhttp"
	"github.com/spf13/cobra"
)

// clientOptions are the flags every client command shares.
type clientOptions struct {
	endpoint string
	dataDir  string
	region   string
	output   string
}

func (o *clientOptions) register(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&o.endpoint, "endpoint", envOr("LAMINA_ENDPOINT", "http://127.0.0.1:9000"), "Lamina API endpoint (env LAMINA_ENDPOINT)")
	f.StringVar(&o.dataDir, "data", defaultDataDir(), "data directory of the local server, whose credentials are used when AWS_ACCESS_KEY_ID is not set")
	f.StringVar(&o.region, "region", envOr("AWS_REGION", envOr("AWS_DEFAULT_REGION", "us-east-1")), "region (env AWS_REGION)")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
}

// lambdaClient returns an aws-sdk-go-v2 Lambda client for the endpoint.
func (o *clientOptions) lambdaClient() (*lambda.Client, error) {
	creds, err := o.credentials()
	if err != nil {
		return nil, err
	}
	return lambda.New(lambda.Options{Region: o.region, BaseEndpoint: aws.String(o.endpoint), Credentials: creds, HTTPClient: sdkhttp.Client(), Retryer: o.retryer()}), nil
}

// logsClient returns an aws-sdk-go-v2 CloudWatch Logs client for the
// endpoint, which serves functions' logs.
func (o *clientOptions) logsClient() (*cloudwatchlogs.Client, error) {
	creds, err := o.credentials()
	if err != nil {
		return nil, err
	}
	return cloudwatchlogs.New(cloudwatchlogs.Options{Region: o.region, BaseEndpoint: aws.String(o.endpoint), Credentials: creds, HTTPClient: sdkhttp.Client(), Retryer: o.retryer()}), nil
}

// credentials are the standard AWS environment variables when set, else the
// local server's pair from its data directory. It also checks --output,
// which every client command shares.
func (o *clientOptions) credentials() (aws.CredentialsProvider, error) {
	if o.output != "text" && o.output != "json" {
		return nil, fmt.Errorf("--output must be text or json, got %q", o.output)
	}
	var provider aws.CredentialsProvider
	if id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		provider = awscreds.NewStaticCredentialsProvider(id, secret, os.Getenv("AWS_SESSION_TOKEN"))
	} else {
		pair, err := credentials.Load(o.dataDir)
		if err != nil {
			return nil, fmt.Errorf("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or point --data at the data directory of a server started with `lamina server`, which keeps its key pair there (%v)", err)
		}
		provider = awscreds.NewStaticCredentialsProvider(pair.AccessKeyID, pair.SecretAccessKey, "")
	}
	return provider, nil
}
