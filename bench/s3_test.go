package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// notifyPy is a function that tells the benchmark, by a UDP datagram to
// NOTIFY_PORT on the loopback, the key of every S3 event it gets.
const notifyPy = `import os, socket
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
port = int(os.environ["NOTIFY_PORT"])


def handler(event, context):
    for r in event["Records"]:
        sock.sendto(r["s3"]["object"]["key"].encode(), ("127.0.0.1", port))
`

// BenchmarkS3 measures the S3 service on a server of its own (process
// sandbox, so that a function can reach the benchmark on the loopback),
// through aws-sdk-go-v2's S3 client (path-style, its default CRC32
// checksum): small PUTs at concurrency 1 and 16 (objects/s), 64 MiB PUTs
// and GETs (MB/s), and the latency of a bucket notification, from the PUT's
// answer to the function running with its event.
func BenchmarkS3(b *testing.B) {
	f := getFixture(b)
	s := &fixture{dir: f.dir, laminaBin: f.laminaBin, goZip: f.goZip}
	if err := s.startServer("s3", "--sandbox", "process", "--s3-max", "8192"); err != nil {
		b.Fatal(err)
	}
	defer s.server.stop(30 * time.Second)
	client := s3.New(s3.Options{
		Region: region, BaseEndpoint: aws.String("http://" + s.addr), UsePathStyle: true,
		Credentials:      credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	})
	ctx := context.Background()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bench")}); err != nil {
		b.Fatal(err)
	}

	small := make([]byte, 1024)
	for _, c := range []int{1, 16} {
		b.Run(fmt.Sprintf("PutSmall/c%d", c), func(b *testing.B) {
			var next atomic.Int64
			lat := make([]time.Duration, b.N)
			var wg sync.WaitGroup
			var failed atomic.Pointer[error]
			b.ResetTimer()
			start := time.Now()
			for range c {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1)) - 1
						if i >= b.N || failed.Load() != nil {
							return
						}
						t0 := time.Now()
						_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bench"),
							Key: aws.String("small/" + strconv.Itoa(c) + "/" + strconv.Itoa(i)), Body: bytes.NewReader(small)})
						if err != nil {
							failed.CompareAndSwap(nil, &err)
							return
						}
						lat[i] = time.Since(t0)
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if err := failed.Load(); err != nil {
				b.Fatal(*err)
			}
			report(b, float64(b.N)/elapsed.Seconds(), "objects/s")
			latencyMetrics(b, "", lat)
		})
	}

	large := make([]byte, 64<<20)
	_, _ = rand.Read(large)
	b.Run("PutLarge64MiB", func(b *testing.B) {
		b.SetBytes(int64(len(large)))
		start := time.Now()
		for i := range b.N {
			if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bench"), Key: aws.String("large/" + strconv.Itoa(i)),
				Body: bytes.NewReader(large)}); err != nil {
				b.Fatal(err)
			}
		}
		report(b, float64(b.N*len(large))/(1<<20)/time.Since(start).Seconds(), "MiB/s")
	})
	b.Run("GetLarge64MiB", func(b *testing.B) {
		b.SetBytes(int64(len(large)))
		start := time.Now()
		for range b.N {
			out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bench"), Key: aws.String("large/0")})
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, out.Body)
			out.Body.Close()
			if err != nil || n != int64(len(large)) {
				b.Fatalf("read %d bytes: %v", n, err)
			}
		}
		report(b, float64(b.N*len(large))/(1<<20)/time.Since(start).Seconds(), "MiB/s")
	})

	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	port := conn.LocalAddr().(*net.UDPAddr).Port
	code, err := zipFiles(map[string]zipFile{"app.py": {notifyPy, 0o644}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.sdk.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("notified"), Runtime: "python3.12",
		Role: aws.String("arn:aws:iam::000000000000:role/bench"), Handler: aws.String("app.handler"),
		Code: &types.FunctionCode{ZipFile: code}, Environment: &types.Environment{Variables: map[string]string{"NOTIFY_PORT": strconv.Itoa(port)}}}); err != nil {
		b.Fatal(err)
	}
	if _, err := s.sdk.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("notified"), StatementId: aws.String("s3"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("s3.amazonaws.com"), SourceArn: aws.String("arn:aws:s3:::bench")}); err != nil {
		b.Fatal(err)
	}
	if _, err := client.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String("bench"),
		NotificationConfiguration: &s3types.NotificationConfiguration{LambdaFunctionConfigurations: []s3types.LambdaFunctionConfiguration{{
			LambdaFunctionArn: aws.String("arn:aws:lambda:" + region + ":000000000000:function:notified"),
			Events:            []s3types.Event{"s3:ObjectCreated:*"},
			Filter: &s3types.NotificationConfigurationFilter{Key: &s3types.S3KeyFilter{FilterRules: []s3types.FilterRule{
				{Name: s3types.FilterRuleNamePrefix, Value: aws.String("notify/")}}}}}}}}); err != nil {
		b.Fatal(err)
	}
	b.Run("Notification", func(b *testing.B) {
		buf := make([]byte, 2048)
		notify := func(key string) (time.Duration, error) {
			if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bench"), Key: aws.String(key), Body: bytes.NewReader(small)}); err != nil {
				return 0, err
			}
			stored := time.Now()
			_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
			for {
				n, _, err := conn.ReadFrom(buf)
				if err != nil {
					return 0, fmt.Errorf("no notification of %s: %w", key, err)
				}
				if string(buf[:n]) == key {
					return time.Since(stored), nil
				}
			}
		}
		for i := range 3 { // the first starts the function's environment
			if _, err := notify("notify/warm-" + strconv.Itoa(i)); err != nil {
				b.Fatal(err)
			}
		}
		lat := make([]time.Duration, b.N)
		b.ResetTimer()
		for i := range b.N {
			var err error
			if lat[i], err = notify("notify/" + strconv.Itoa(i)); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		latencyMetrics(b, "", lat)
	})
}
