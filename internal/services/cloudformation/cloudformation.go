// Package cloudformation is the subset of AWS CloudFormation's API (query
// protocol, signing name "cloudformation") that `aws cloudformation
// deploy`, `lamina deploy` and `cdk deploy` call: stacks, change sets,
// events, resources and templates, with the SAM transform applied on the
// server. The stacks themselves are internal/deploy's.
package cloudformation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/deploy"
	"github.com/lamina-project/lamina/internal/store"
)

// DeployTimeout bounds one deploy or delete, which runs within its request
// (clients see it finished on their first poll) and goes on if the client
// leaves.
const DeployTimeout = 15 * time.Minute

// Service is the CloudFormation API.
type Service struct {
	engine *deploy.Engine
	s3     *s3.Client
}

// New returns the API of an engine; s3 fetches TemplateURLs.
func New(engine *deploy.Engine, objects *s3.Client) *Service {
	return &Service{engine: engine, s3: objects}
}

// API is the service on its wire protocol.
func (s *Service) API() *awsproto.Service {
	api := &awsproto.Service{SigningName: "cloudformation", QueryVersion: "2010-05-15",
		XMLNamespace: "http://cloudformation.amazonaws.com/doc/2010-05-15/"}
	const templates = 2*deploy.MaxTemplateBody + 64<<10 // a form-encoded template grows up to 3 times
	api.Handle(
		awsproto.Op("CreateStack", s.createStack).Bodies(templates, 3),
		awsproto.Op("UpdateStack", s.updateStack).Bodies(templates, 3),
		awsproto.Op("DeleteStack", s.deleteStack),
		awsproto.Op("DescribeStacks", s.describeStacks),
		awsproto.Op("ListStacks", s.listStacks),
		awsproto.Op("DescribeStackEvents", s.describeStackEvents),
		awsproto.Op("DescribeStackResources", s.describeStackResources),
		awsproto.Op("DescribeStackResource", s.describeStackResource),
		awsproto.Op("ListStackResources", s.listStackResources),
		awsproto.Op("GetTemplate", s.getTemplate),
		awsproto.Op("GetTemplateSummary", s.getTemplateSummary).Bodies(templates, 3),
		awsproto.Op("ValidateTemplate", s.validateTemplate).Bodies(templates, 3),
		awsproto.Op("CreateChangeSet", s.createChangeSet).Bodies(templates, 3),
		awsproto.Op("DescribeChangeSet", s.describeChangeSet),
		awsproto.Op("ExecuteChangeSet", s.executeChangeSet),
		awsproto.Op("DeleteChangeSet", s.deleteChangeSet),
		awsproto.Op("ListChangeSets", s.listChangeSets),
		awsproto.Op("UpdateTerminationProtection", s.updateTerminationProtection),
	)
	return api
}

func validationError(format string, args ...any) error {
	return awsproto.Errorf(http.StatusBadRequest, "ValidationError", format, args...)
}

// apiError turns the engine's errors into CloudFormation's.
func apiError(err error) error {
	var ve *deploy.ValidationError
	if errors.As(err, &ve) {
		return validationError("%s", ve.Message)
	}
	return err
}

func stackNotFound(name string) error {
	return validationError("Stack with id %s does not exist", name)
}

// stack finds a stack by name or ID.
func (s *Service) stack(ctx context.Context, nameOrID string) (*deploy.Stack, error) {
	name := nameOrID
	if strings.HasPrefix(nameOrID, "arn:") {
		// arn:aws:cloudformation:region:account:stack/name/uuid
		parts := strings.Split(nameOrID, "/")
		if len(parts) < 2 {
			return nil, stackNotFound(nameOrID)
		}
		name = parts[1]
	}
	st, err := s.engine.Stacks.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && strings.HasPrefix(nameOrID, "arn:") && st.ID != nameOrID) {
		return nil, stackNotFound(nameOrID)
	}
	return st, err
}

// template reads TemplateBody, or the object TemplateURL names in Lamina's
// S3 (path-style or virtual-host, whatever the host: CDK and `aws
// cloudformation deploy` name AWS's S3 endpoints or another origin).
func (s *Service) template(ctx context.Context, body, templateURL string) (string, error) {
	switch {
	case body != "" && templateURL != "":
		return "", validationError("Specify exactly one of TemplateBody or TemplateUrl.")
	case body != "":
		return body, nil
	case templateURL == "":
		return "", validationError("Either Template URL or Template Body must be specified.")
	}
	u, err := url.Parse(templateURL)
	if err != nil {
		return "", validationError("TemplateURL must be a supported URL.")
	}
	path := strings.TrimPrefix(u.Path, "/")
	var bucket, key string
	if host, _, _ := strings.Cut(u.Host, ":"); strings.Contains(host, ".s3.") || strings.Contains(host, ".s3-") || strings.HasSuffix(host, ".localhost") {
		bucket, key = strings.SplitN(host, ".", 2)[0], path
	} else {
		bucket, key, _ = strings.Cut(path, "/")
	}
	key, _ = url.PathUnescape(key)
	out, err := s.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", validationError("TemplateURL must reference a valid S3 object to which you have access: s3://%s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, deploy.MaxTemplateBody+1))
	if err != nil {
		return "", err
	}
	if len(data) > deploy.MaxTemplateBody {
		return "", validationError("Template may not exceed %d bytes in size.", deploy.MaxTemplateBody)
	}
	return string(data), nil
}

// detached is the context a deploy runs in: it outlives a client that
// stops waiting, within DeployTimeout.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), DeployTimeout)
}

// params turns the request's parameters into values, taking previous
// values where asked.
func params(in []Parameter, previous map[string]string) map[string]string {
	out := map[string]string{}
	for _, p := range in {
		if p.UsePreviousValue {
			if v, ok := previous[p.ParameterKey]; ok {
				out[p.ParameterKey] = v
			}
			continue
		}
		out[p.ParameterKey] = p.ParameterValue
	}
	return out
}

// isoTime is the query protocol's timestamp.
func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// changeSetARN returns a new change set's ID.
func (s *Service) changeSetARN(name string) string {
	return fmt.Sprintf("arn:aws:cloudformation:%s:%s:changeSet/%s/%s", s.engine.Region, s.engine.AccountID, name,
		strings.ToLower(strings.ReplaceAll(time.Now().Format("20060102T150405.000000000"), ".", "")))
}
