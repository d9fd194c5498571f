package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	etypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// TypeHTTPAPI is Lamina's HTTP API (route table) as a resource: Name,
// StageVariables and Routes [{RouteKey, Function}]. The SAM transform makes
// it of AWS::Serverless::HttpApi and Api, and of functions' Api and
// HttpApi events.
const TypeHTTPAPI = "Lamina::HttpApi"

// Clients are the APIs resource types drive: Lamina's own, as their
// clients speak them.
type Clients struct {
	Lambda  *lambda.Client
	S3      *s3.Client
	SQS     *sqs.Client
	Events  *eventbridge.Client
	SNS     *sns.Client
	Kinesis *kinesis.Client
	SSM     *ssm.Client
	// Lamina calls one of Lamina's own operations (HTTP APIs) with a JSON
	// body, and decodes the JSON answer into out (nil: none).
	Lamina func(ctx context.Context, method, path string, in, out any) error
}

// Types returns every resource type Lamina deploys.
func Types(c *Clients, region, accountID string) map[string]*ResourceType {
	types := lambdaTypes(c)
	types["AWS::S3::Bucket"] = bucketType(c.S3, region)
	types["AWS::SQS::Queue"] = queueType(c.SQS)
	types["Custom::S3BucketNotifications"] = bucketNotificationsType(c.S3)
	types["AWS::Events::Rule"] = ruleType(c.Events)
	types["AWS::Events::EventBus"] = busType(c.Events)
	types["AWS::SNS::Topic"] = topicType(c.SNS)
	types["AWS::SNS::Subscription"] = subscriptionType(c.SNS)
	types["AWS::Kinesis::Stream"] = streamType(c.Kinesis)
	types[TypeHTTPAPI] = httpAPIType(c.Lamina)
	types["AWS::SSM::Parameter"] = parameterType(c.SSM)
	// Lamina has no IAM: roles and policies are recorded, with the ARNs
	// templates refer to, and grant nothing (functions' own credentials are
	// scoped by Lamina, see README).
	types["AWS::IAM::Role"] = recordType(func(r *Resolved) (string, map[string]any) {
		name := r.Properties.Str("RoleName")
		if name == "" {
			name = physicalName(r.StackName, r.LogicalID, 64, false)
		}
		return name, map[string]any{"Arn": "arn:aws:iam::" + accountID + ":role/" + name, "RoleId": "AROA" + newID()[:17]}
	})
	for _, t := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::CDK::Metadata", "AWS::S3::BucketPolicy",
		// Lamina's topics take every publisher the caller's credentials
		// allow; a topic policy is a record.
		"AWS::SNS::TopicPolicy",
		// Lamina has no KMS (buckets are not encrypted with keys of their
		// own): keys and aliases are records, as CDK's bootstrap stack may
		// name them.
		"AWS::KMS::Alias"} {
		types[t] = recordType(func(r *Resolved) (string, map[string]any) {
			return physicalName(r.StackName, r.LogicalID, 64, false), map[string]any{}
		})
	}
	types["AWS::KMS::Key"] = recordType(func(r *Resolved) (string, map[string]any) {
		id := newID()
		return id, map[string]any{"Arn": "arn:aws:kms:" + region + ":" + accountID + ":key/" + id, "KeyId": id}
	})
	// Lamina has no container registry (functions are zip packages): CDK's
	// bootstrap stack's repository for container assets is a record, with
	// the names an ECR repository has; pushing an image to it fails.
	types["AWS::ECR::Repository"] = recordType(func(r *Resolved) (string, map[string]any) {
		name := r.Properties.Str("RepositoryName")
		if name == "" {
			name = strings.ToLower(physicalName(r.StackName, r.LogicalID, 256, false))
		}
		return name, map[string]any{"Arn": "arn:aws:ecr:" + region + ":" + accountID + ":repository/" + name,
			"RepositoryUri": accountID + ".dkr.ecr." + region + ".amazonaws.com/" + name}
	})
	return types
}

// recordType is a type Lamina records without making anything.
func recordType(name func(r *Resolved) (string, map[string]any)) *ResourceType {
	return &ResourceType{
		Create: func(_ context.Context, r *Resolved) (string, map[string]any, error) {
			id, attrs := name(r)
			return id, attrs, nil
		},
		Update: func(_ context.Context, r *Resolved, _ map[string]any) (map[string]any, error) {
			return r.Attributes, nil
		},
		Delete: func(context.Context, *Resolved) error { return nil },
	}
}

// apiCode is the error code of an AWS API error.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// bucketRecorded are bucket properties Lamina records without applying.
var bucketRecorded = []string{"BucketEncryption", "PublicAccessBlockConfiguration", "VersioningConfiguration",
	"LifecycleConfiguration", "OwnershipControls", "Tags"}

func bucketType(c *s3.Client, region string) *ResourceType {
	notify := func(ctx context.Context, bucket string, p Props) error {
		cfg := &s3types.NotificationConfiguration{}
		for _, lc := range p.Map("NotificationConfiguration").List("LambdaConfigurations") {
			fc := s3types.LambdaFunctionConfiguration{LambdaFunctionArn: aws.String(lc.Str("Function")),
				Events: []s3types.Event{s3types.Event(lc.Str("Event"))}}
			if rules := lc.Map("Filter").Map("S3Key").List("Rules"); len(rules) > 0 {
				fc.Filter = &s3types.NotificationConfigurationFilter{Key: &s3types.S3KeyFilter{}}
				for _, r := range rules {
					fc.Filter.Key.FilterRules = append(fc.Filter.Key.FilterRules,
						s3types.FilterRule{Name: s3types.FilterRuleName(r.Str("Name")), Value: aws.String(r.Str("Value"))})
				}
			}
			cfg.LambdaFunctionConfigurations = append(cfg.LambdaFunctionConfigurations, fc)
		}
		for k := range p.Map("NotificationConfiguration") {
			if k != "LambdaConfigurations" {
				return fmt.Errorf("NotificationConfiguration.%s is not supported by Lamina (LambdaConfigurations only)", k)
			}
		}
		_, err := c.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String(bucket),
			NotificationConfiguration: cfg})
		return err
	}
	check := func(p Props) error {
		for k := range p {
			if k == "AccessControl" && p.Str(k) != "Private" {
				return fmt.Errorf("AccessControl %s of AWS::S3::Bucket is not supported by Lamina (its buckets are Private)", p.Str(k))
			}
			if k != "BucketName" && k != "NotificationConfiguration" && k != "AccessControl" && !slices.Contains(bucketRecorded, k) {
				return fmt.Errorf("property %s of AWS::S3::Bucket is not supported by Lamina", k)
			}
		}
		return nil
	}
	attrs := func(name string) map[string]any {
		return map[string]any{"Arn": "arn:aws:s3:::" + name, "DomainName": name + ".s3.amazonaws.com",
			"RegionalDomainName": name + ".s3." + region + ".amazonaws.com", "WebsiteURL": "http://" + name + ".s3-website-" + region + ".amazonaws.com"}
	}
	return &ResourceType{
		Replace: []string{"BucketName"},
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			if err := check(r.Properties); err != nil {
				return "", nil, err
			}
			name := r.Properties.Str("BucketName")
			if name == "" {
				name = physicalName(r.StackName, r.LogicalID, 63, true)
			}
			if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
				return "", nil, err
			}
			if r.Properties["NotificationConfiguration"] != nil {
				if err := notify(ctx, name, r.Properties); err != nil {
					_, _ = c.DeleteBucket(context.WithoutCancel(ctx), &s3.DeleteBucketInput{Bucket: aws.String(name)})
					return "", nil, err
				}
			}
			return name, attrs(name), nil
		},
		Update: func(ctx context.Context, r *Resolved, old map[string]any) (map[string]any, error) {
			if err := check(r.Properties); err != nil {
				return nil, err
			}
			return r.Attributes, notify(ctx, r.PhysicalID, r.Properties)
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			_, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(r.PhysicalID)})
			if apiCode(err) == "NoSuchBucket" {
				return nil
			}
			return err
		},
	}
}

// bucketNotificationsType is CDK's Custom::S3BucketNotifications (what
// Bucket.addEventNotification makes), done natively: the bucket's whole
// notification configuration is NotificationConfiguration, as S3's
// PutBucketNotificationConfiguration takes it, and deleting the resource
// empties it. The ServiceToken (CDK's handler function) is not called.
func bucketNotificationsType(c *s3.Client) *ResourceType {
	const typ = "Custom::S3BucketNotifications"
	put := func(ctx context.Context, p Props) error {
		if err := checkProps(typ, p, "ServiceToken", "BucketName", "NotificationConfiguration", "Managed", "SkipDestinationValidation"); err != nil {
			return err
		}
		if v, ok := p["Managed"]; ok && !truthy(v) {
			return fmt.Errorf("%s with Managed false (an imported bucket's configuration, merged with others') is not supported by Lamina", typ)
		}
		cfg := &s3types.NotificationConfiguration{}
		if err := p.Map("NotificationConfiguration").decode(typ+" NotificationConfiguration", cfg); err != nil {
			return err
		}
		in := &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String(p.Str("BucketName")), NotificationConfiguration: cfg}
		if truthy(p["SkipDestinationValidation"]) {
			in.SkipDestinationValidation = aws.Bool(true)
		}
		_, err := c.PutBucketNotificationConfiguration(ctx, in)
		return err
	}
	return &ResourceType{
		Replace: []string{"BucketName"},
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			if err := put(ctx, r.Properties); err != nil {
				return "", nil, err
			}
			return physicalName(r.StackName, r.LogicalID, 128, false), map[string]any{}, nil
		},
		Update: func(ctx context.Context, r *Resolved, old map[string]any) (map[string]any, error) {
			return r.Attributes, put(ctx, r.Properties)
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			_, err := c.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
				Bucket: aws.String(r.Properties.Str("BucketName")), NotificationConfiguration: &s3types.NotificationConfiguration{}})
			if apiCode(err) == "NoSuchBucket" {
				return nil
			}
			return err
		},
	}
}

// queueAttributes are the AWS::SQS::Queue properties that are queue
// attributes.
var queueAttributes = []string{"DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
	"VisibilityTimeout", "RedrivePolicy", "RedriveAllowPolicy", "FifoQueue", "ContentBasedDeduplication",
	"DeduplicationScope", "FifoThroughputLimit", "SqsManagedSseEnabled", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds"}

func queueType(c *sqs.Client) *ResourceType {
	attributes := func(p Props) (map[string]string, error) {
		out := map[string]string{}
		for k, v := range p {
			switch {
			case k == "QueueName" || k == "Tags":
			case slices.Contains(queueAttributes, k):
				if m, ok := v.(map[string]any); ok {
					data, _ := json.Marshal(m)
					out[k] = string(data)
				} else {
					out[k] = str(v)
				}
			default:
				return nil, fmt.Errorf("property %s of AWS::SQS::Queue is not supported by Lamina", k)
			}
		}
		return out, nil
	}
	return &ResourceType{
		Replace: []string{"QueueName", "FifoQueue"},
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			attrs, err := attributes(r.Properties)
			if err != nil {
				return "", nil, err
			}
			name := r.Properties.Str("QueueName")
			if name == "" {
				name = physicalName(r.StackName, r.LogicalID, 80, false)
				if attrs["FifoQueue"] == "true" {
					name = physicalName(r.StackName, r.LogicalID, 75, false) + ".fifo"
				}
			}
			out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs, Tags: tagsOf(r.Properties)})
			if err != nil {
				return "", nil, err
			}
			u := aws.ToString(out.QueueUrl)
			got, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
			if err != nil {
				return "", nil, err
			}
			return u, map[string]any{"Arn": got.Attributes["QueueArn"], "QueueName": name, "QueueUrl": u}, nil
		},
		Update: func(ctx context.Context, r *Resolved, old map[string]any) (map[string]any, error) {
			attrs, err := attributes(r.Properties)
			if err != nil {
				return nil, err
			}
			delete(attrs, "FifoQueue")
			if len(attrs) > 0 {
				_, err = c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(r.PhysicalID), Attributes: attrs})
			}
			return r.Attributes, err
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			_, err := c.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(r.PhysicalID)})
			if code := apiCode(err); code == "QueueDoesNotExist" || code == "AWS.SimpleQueueService.NonExistentQueue" {
				return nil
			}
			return err
		},
	}
}

// ruleName splits a rule's physical ID, "bus|name" on a bus of its own
// as CloudFormation's Ref has it, or "name" on the default bus.
func ruleName(id string) (bus, name *string) {
	if b, n, ok := strings.Cut(id, "|"); ok {
		return aws.String(b), aws.String(n)
	}
	return nil, aws.String(id)
}

// jsonText is a property CloudFormation takes as a JSON object or as its
// text (an event pattern, a filter policy), as text.
func jsonText(v any) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	data, err := json.Marshal(v)
	return string(data), err
}

func ruleType(c *eventbridge.Client) *ResourceType {
	put := func(ctx context.Context, id string, p Props, old Props) (string, error) {
		in := &eventbridge.PutRuleInput{}
		if err := p.decode("AWS::Events::Rule", in, "Targets", "EventPattern"); err != nil {
			return "", err
		}
		if v, ok := p["EventPattern"]; ok {
			pattern, err := jsonText(v)
			if err != nil {
				return "", err
			}
			in.EventPattern = aws.String(pattern)
		}
		bus, name := ruleName(id)
		in.Name, in.EventBusName = name, bus
		out, err := c.PutRule(ctx, in)
		if err != nil {
			return "", err
		}
		var targets []etypes.Target
		ids := map[string]bool{}
		for _, t := range p.List("Targets") {
			target := etypes.Target{}
			if err := t.decode("AWS::Events::Rule target", &target); err != nil {
				return "", err
			}
			targets = append(targets, target)
			ids[t.Str("Id")] = true
		}
		var gone []string
		for _, t := range old.List("Targets") {
			if !ids[t.Str("Id")] {
				gone = append(gone, t.Str("Id"))
			}
		}
		if len(gone) > 0 {
			if _, err := c.RemoveTargets(ctx, &eventbridge.RemoveTargetsInput{Rule: name, EventBusName: bus, Ids: gone}); err != nil {
				return "", err
			}
		}
		if len(targets) > 0 {
			res, err := c.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: name, EventBusName: bus, Targets: targets})
			if err != nil {
				return "", err
			}
			if res.FailedEntryCount > 0 {
				return "", fmt.Errorf("target %s: %s", aws.ToString(res.FailedEntries[0].TargetId), aws.ToString(res.FailedEntries[0].ErrorMessage))
			}
		}
		return aws.ToString(out.RuleArn), nil
	}
	return &ResourceType{
		Replace: []string{"Name", "EventBusName"},
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			id := r.Properties.Str("Name")
			if id == "" {
				id = physicalName(r.StackName, r.LogicalID, 64, false)
			}
			if bus := r.Properties.Str("EventBusName"); bus != "" && bus != "default" {
				id = busOf(bus) + "|" + id
			}
			arn, err := put(ctx, id, r.Properties, nil)
			if err != nil {
				return "", nil, err
			}
			return id, map[string]any{"Arn": arn}, nil
		},
		Update: func(ctx context.Context, r *Resolved, old map[string]any) (map[string]any, error) {
			_, err := put(ctx, r.PhysicalID, r.Properties, old)
			return r.Attributes, err
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			bus, name := ruleName(r.PhysicalID)
			var ids []string
			for _, t := range r.Properties.List("Targets") {
				ids = append(ids, t.Str("Id"))
			}
			if len(ids) > 0 {
				if _, err := c.RemoveTargets(ctx, &eventbridge.RemoveTargetsInput{Rule: name, EventBusName: bus, Ids: ids}); err != nil {
					if apiCode(err) == "ResourceNotFoundException" {
						return nil
					}
					return err
				}
			}
			_, err := c.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: name, EventBusName: bus})
			if apiCode(err) == "ResourceNotFoundException" {
				return nil
			}
			return err
		},
	}
}

// httpAPI is what Lamina's HTTP API operations answer.
type httpAPI struct {
	APIID       string
	APIEndpoint string
	Routes      []struct{ RouteKey string }
}

func httpAPIType(call func(ctx context.Context, method, path string, in, out any) error) *ResourceType {
	routes := func(ctx context.Context, id string, p, old Props) error {
		keys := map[string]bool{}
		for _, r := range p.List("Routes") {
			keys[r.Str("RouteKey")] = true
			if err := call(ctx, http.MethodPut, "/_lamina/apis/"+url.PathEscape(id)+"/routes",
				map[string]string{"RouteKey": r.Str("RouteKey"), "Function": r.Str("Function")}, nil); err != nil {
				return fmt.Errorf("route %s: %w", r.Str("RouteKey"), err)
			}
		}
		for _, r := range old.List("Routes") {
			if !keys[r.Str("RouteKey")] {
				if err := call(ctx, http.MethodDelete, "/_lamina/apis/"+url.PathEscape(id)+"/routes?RouteKey="+url.QueryEscape(r.Str("RouteKey")), nil, nil); err != nil {
					return err
				}
			}
		}
		return nil
	}
	body := func(p Props) (map[string]any, error) {
		for k := range p {
			if k != "Name" && k != "StageVariables" && k != "Routes" {
				return nil, fmt.Errorf("property %s of %s is not supported", k, TypeHTTPAPI)
			}
		}
		return map[string]any{"Name": p.Str("Name"), "StageVariables": p.Map("StageVariables")}, nil
	}
	return &ResourceType{
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			in, err := body(r.Properties)
			if err != nil {
				return "", nil, err
			}
			var api httpAPI
			if err := call(ctx, http.MethodPost, "/_lamina/apis", in, &api); err != nil {
				return "", nil, err
			}
			if err := routes(ctx, api.APIID, r.Properties, nil); err != nil {
				_ = call(context.WithoutCancel(ctx), http.MethodDelete, "/_lamina/apis/"+url.PathEscape(api.APIID), nil, nil)
				return "", nil, err
			}
			return api.APIID, map[string]any{"ApiId": api.APIID, "ApiEndpoint": api.APIEndpoint}, nil
		},
		Update: func(ctx context.Context, r *Resolved, old map[string]any) (map[string]any, error) {
			in, err := body(r.Properties)
			if err != nil {
				return nil, err
			}
			if err := call(ctx, http.MethodPatch, "/_lamina/apis/"+url.PathEscape(r.PhysicalID), in, nil); err != nil {
				return nil, err
			}
			return r.Attributes, routes(ctx, r.PhysicalID, r.Properties, old)
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			err := call(ctx, http.MethodDelete, "/_lamina/apis/"+url.PathEscape(r.PhysicalID), nil, nil)
			if isNotFound(err) || apiCode(err) == "ResourceNotFoundException" {
				return nil
			}
			return err
		},
	}
}

// parameterType is AWS::SSM::Parameter, a String or StringList parameter
// of Lamina's Parameter Store (CDK's bootstrap stack keeps its version in
// one). Tags, Policies and AllowedPattern are recorded, not applied.
func parameterType(c *ssm.Client) *ResourceType {
	const typ = "AWS::SSM::Parameter"
	put := func(ctx context.Context, name string, p Props, overwrite bool) error {
		if err := checkProps(typ, p, "Name", "Type", "Value", "Description", "DataType", "Tier", "Tags", "Policies", "AllowedPattern"); err != nil {
			return err
		}
		in := &ssm.PutParameterInput{Name: aws.String(name), Type: ssmtypes.ParameterType(p.Str("Type")),
			Value: aws.String(p.Str("Value")), Overwrite: aws.Bool(overwrite)}
		if d := p.Str("Description"); d != "" {
			in.Description = aws.String(d)
		}
		if d := p.Str("DataType"); d != "" {
			in.DataType = aws.String(d)
		}
		if t := p.Str("Tier"); t != "" {
			in.Tier = ssmtypes.ParameterTier(t)
		}
		_, err := c.PutParameter(ctx, in)
		return err
	}
	attrs := func(p Props) map[string]any { return map[string]any{"Type": p.Str("Type"), "Value": p.Str("Value")} }
	return &ResourceType{
		Replace: []string{"Name"},
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			name := r.Properties.Str("Name")
			if name == "" {
				name = physicalName("CFN", r.LogicalID, 128, false)
			}
			if err := put(ctx, name, r.Properties, false); err != nil {
				return "", nil, err
			}
			return name, attrs(r.Properties), nil
		},
		Update: func(ctx context.Context, r *Resolved, _ map[string]any) (map[string]any, error) {
			return attrs(r.Properties), put(ctx, r.PhysicalID, r.Properties, true)
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			_, err := c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(r.PhysicalID)})
			if apiCode(err) == "ParameterNotFound" {
				return nil
			}
			return err
		},
	}
}
