package deploy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// The resource types of the services that carry events to functions: SNS
// topics and subscriptions, Kinesis streams, EventBridge buses (rules are
// in services.go).

// checkProps refuses, by name, a property that is not one of allowed.
func checkProps(typ string, p Props, allowed ...string) error {
	for _, k := range sortedKeys(p) {
		if !slices.Contains(allowed, k) {
			return fmt.Errorf("property %s of %s is not supported by Lamina", k, typ)
		}
	}
	return nil
}

// topicAttributes are the AWS::SNS::Topic properties that are topic
// attributes (objects among them as JSON text).
var topicAttributes = []string{"DisplayName", "KmsMasterKeyId", "TracingConfig", "SignatureVersion", "DataProtectionPolicy",
	"ArchivePolicy", "DeliveryPolicy", "FifoTopic"}

// snsNotFound reports whether an SNS error says the topic or subscription
// is gone.
func snsNotFound(err error) bool {
	code := apiCode(err)
	return code == "NotFound" || code == "NotFoundException"
}

func topicType(c *sns.Client) *ResourceType {
	const typ = "AWS::SNS::Topic"
	attributes := func(p Props) (map[string]string, error) {
		if err := checkProps(typ, p, append(slices.Clone(topicAttributes), "TopicName", "Subscription", "Tags")...); err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, k := range topicAttributes {
			if v, ok := p[k]; ok {
				text, err := jsonText(v)
				if err != nil {
					return nil, err
				}
				out[k] = text
			}
		}
		return out, nil
	}
	type endpoint struct{ protocol, endpoint string }
	subscribe := func(ctx context.Context, arn string, p, old Props) error {
		want := map[endpoint]bool{}
		for _, s := range p.List("Subscription") {
			e := endpoint{s.Str("Protocol"), s.Str("Endpoint")}
			want[e] = true
			if _, err := c.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(arn), Protocol: aws.String(e.protocol),
				Endpoint: aws.String(e.endpoint), ReturnSubscriptionArn: true}); err != nil {
				return fmt.Errorf("subscription %s %s: %w", e.protocol, e.endpoint, err)
			}
		}
		// Subscriptions that left the template go; those an
		// AWS::SNS::Subscription made are not the topic's to remove.
		gone := map[endpoint]bool{}
		for _, s := range old.List("Subscription") {
			if e := (endpoint{s.Str("Protocol"), s.Str("Endpoint")}); !want[e] {
				gone[e] = true
			}
		}
		if len(gone) == 0 {
			return nil
		}
		pages := sns.NewListSubscriptionsByTopicPaginator(c, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(arn)})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, s := range page.Subscriptions {
				if gone[endpoint{aws.ToString(s.Protocol), aws.ToString(s.Endpoint)}] {
					if _, err := c.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: s.SubscriptionArn}); err != nil && !snsNotFound(err) {
						return err
					}
				}
			}
		}
		return nil
	}
	return &ResourceType{
		Replace: []string{"TopicName", "FifoTopic"},
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			attrs, err := attributes(r.Properties)
			if err != nil {
				return "", nil, err
			}
			name := r.Properties.Str("TopicName")
			if name == "" {
				name = physicalName(r.StackName, r.LogicalID, 256, false)
			}
			in := &sns.CreateTopicInput{Name: aws.String(name), Attributes: attrs}
			for _, t := range r.Properties.List("Tags") {
				in.Tags = append(in.Tags, snstypes.Tag{Key: aws.String(t.Str("Key")), Value: aws.String(t.Str("Value"))})
			}
			out, err := c.CreateTopic(ctx, in)
			if err != nil {
				return "", nil, err
			}
			arn := aws.ToString(out.TopicArn)
			if err := subscribe(ctx, arn, r.Properties, nil); err != nil {
				_, _ = c.DeleteTopic(context.WithoutCancel(ctx), &sns.DeleteTopicInput{TopicArn: out.TopicArn})
				return "", nil, err
			}
			return arn, map[string]any{"TopicArn": arn, "TopicName": name}, nil
		},
		Update: func(ctx context.Context, r *Resolved, old map[string]any) (map[string]any, error) {
			attrs, err := attributes(r.Properties)
			if err != nil {
				return nil, err
			}
			oldAttrs, _ := attributes(old)
			for _, k := range topicAttributes {
				if k == "FifoTopic" || attrs[k] == oldAttrs[k] {
					continue
				}
				if _, err := c.SetTopicAttributes(ctx, &sns.SetTopicAttributesInput{TopicArn: aws.String(r.PhysicalID),
					AttributeName: aws.String(k), AttributeValue: aws.String(attrs[k])}); err != nil {
					return nil, err
				}
			}
			return r.Attributes, subscribe(ctx, r.PhysicalID, r.Properties, old)
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			_, err := c.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(r.PhysicalID)})
			if snsNotFound(err) {
				return nil
			}
			return err
		},
	}
}

// subscriptionAttributes are the AWS::SNS::Subscription properties that
// are subscription attributes, with the value each goes back to when it
// leaves the template.
var subscriptionAttributes = map[string]string{"FilterPolicy": "", "FilterPolicyScope": "MessageAttributes",
	"RawMessageDelivery": "false", "RedrivePolicy": "", "DeliveryPolicy": "", "SubscriptionRoleArn": "", "ReplayPolicy": ""}

func subscriptionType(c *sns.Client) *ResourceType {
	const typ = "AWS::SNS::Subscription"
	attributes := func(p Props) (map[string]string, error) {
		allowed := []string{"TopicArn", "Protocol", "Endpoint", "Region"}
		for k := range subscriptionAttributes {
			allowed = append(allowed, k)
		}
		if err := checkProps(typ, p, allowed...); err != nil {
			return nil, err
		}
		out := map[string]string{}
		for k := range subscriptionAttributes {
			if v, ok := p[k]; ok {
				text, err := jsonText(v)
				if err != nil {
					return nil, err
				}
				out[k] = text
			}
		}
		return out, nil
	}
	return &ResourceType{
		Replace: []string{"TopicArn", "Protocol", "Endpoint", "Region"},
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			attrs, err := attributes(r.Properties)
			if err != nil {
				return "", nil, err
			}
			out, err := c.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(r.Properties.Str("TopicArn")),
				Protocol: aws.String(r.Properties.Str("Protocol")), Endpoint: aws.String(r.Properties.Str("Endpoint")),
				Attributes: attrs, ReturnSubscriptionArn: true})
			if err != nil {
				return "", nil, err
			}
			arn := aws.ToString(out.SubscriptionArn)
			return arn, map[string]any{"Arn": arn}, nil
		},
		Update: func(ctx context.Context, r *Resolved, old map[string]any) (map[string]any, error) {
			attrs, err := attributes(r.Properties)
			if err != nil {
				return nil, err
			}
			oldAttrs, _ := attributes(old)
			for _, k := range sortedKeys(subscriptionAttributes) {
				v, ok := attrs[k]
				if !ok {
					v = subscriptionAttributes[k]
				}
				if was, had := oldAttrs[k]; v == was || (!had && !ok) {
					continue
				}
				if _, err := c.SetSubscriptionAttributes(ctx, &sns.SetSubscriptionAttributesInput{SubscriptionArn: aws.String(r.PhysicalID),
					AttributeName: aws.String(k), AttributeValue: aws.String(v)}); err != nil {
					return nil, err
				}
			}
			return r.Attributes, nil
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			_, err := c.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(r.PhysicalID)})
			if snsNotFound(err) {
				return nil
			}
			return err
		},
	}
}

func streamType(c *kinesis.Client) *ResourceType {
	const typ = "AWS::Kinesis::Stream"
	// retention sets a stream's retention period, from old (24 hours when
	// not given) to the template's.
	retention := func(ctx context.Context, name string, p, old Props) error {
		want, ok := p.Int("RetentionPeriodHours")
		if !ok {
			want = 24
		}
		had, ok := old.Int("RetentionPeriodHours")
		if !ok {
			had = 24
		}
		var err error
		switch {
		case want > had:
			_, err = c.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String(name),
				RetentionPeriodHours: aws.Int32(want)})
		case want < had:
			_, err = c.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String(name),
				RetentionPeriodHours: aws.Int32(want)})
		}
		return err
	}
	return &ResourceType{
		// Lamina's Kinesis does not reshard: a new shard count or mode
		// makes a new stream.
		Replace: []string{"Name", "ShardCount", "StreamModeDetails"},
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			if err := checkProps(typ, r.Properties, "Name", "ShardCount", "StreamModeDetails", "RetentionPeriodHours"); err != nil {
				return "", nil, err
			}
			name := r.Properties.Str("Name")
			if name == "" {
				name = physicalName(r.StackName, r.LogicalID, 128, false)
			}
			in := &kinesis.CreateStreamInput{StreamName: aws.String(name)}
			mode := r.Properties.Map("StreamModeDetails").Str("StreamMode")
			if mode != "" {
				in.StreamModeDetails = &ktypes.StreamModeDetails{StreamMode: ktypes.StreamMode(mode)}
			}
			if n, ok := r.Properties.Int("ShardCount"); ok {
				in.ShardCount = aws.Int32(n)
			} else if mode != string(ktypes.StreamModeOnDemand) {
				in.ShardCount = aws.Int32(1) // CloudFormation's default
			}
			if _, err := c.CreateStream(ctx, in); err != nil {
				return "", nil, err
			}
			if err := retention(ctx, name, r.Properties, nil); err != nil {
				_, _ = c.DeleteStream(context.WithoutCancel(ctx), &kinesis.DeleteStreamInput{StreamName: aws.String(name)})
				return "", nil, err
			}
			out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
			if err != nil {
				return "", nil, err
			}
			return name, map[string]any{"Arn": aws.ToString(out.StreamDescriptionSummary.StreamARN)}, nil
		},
		Update: func(ctx context.Context, r *Resolved, old map[string]any) (map[string]any, error) {
			if err := checkProps(typ, r.Properties, "Name", "ShardCount", "StreamModeDetails", "RetentionPeriodHours"); err != nil {
				return nil, err
			}
			return r.Attributes, retention(ctx, r.PhysicalID, r.Properties, old)
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			_, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(r.PhysicalID), EnforceConsumerDeletion: aws.Bool(true)})
			if apiCode(err) == "ResourceNotFoundException" {
				return nil
			}
			return err
		},
	}
}

func busType(c *eventbridge.Client) *ResourceType {
	const typ = "AWS::Events::EventBus"
	return &ResourceType{ // Lamina's buses cannot change: every change replaces one
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			if err := checkProps(typ, r.Properties, "Name", "Description"); err != nil {
				return "", nil, err
			}
			name := r.Properties.Str("Name")
			if name == "" {
				return "", nil, fmt.Errorf("%s needs a Name", typ)
			}
			in := &eventbridge.CreateEventBusInput{Name: aws.String(name)}
			if d := r.Properties.Str("Description"); d != "" {
				in.Description = aws.String(d)
			}
			out, err := c.CreateEventBus(ctx, in)
			if err != nil {
				return "", nil, err
			}
			arn := aws.ToString(out.EventBusArn)
			return name, map[string]any{"Arn": arn, "Name": name, "Policy": ""}, nil
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			_, err := c.DeleteEventBus(ctx, &eventbridge.DeleteEventBusInput{Name: aws.String(r.PhysicalID)})
			if apiCode(err) == "ResourceNotFoundException" {
				return nil
			}
			return err
		},
	}
}

// busOf is the name of the bus an EventBusName property names, by name or
// ARN.
func busOf(nameOrARN string) string { return nameOrARN[strings.LastIndex(nameOrARN, "/")+1:] }
