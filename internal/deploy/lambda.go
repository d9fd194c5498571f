package deploy

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	ltypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// The AWS::Lambda::* resource types, through the Lambda API.

func isNotFound(err error) bool {
	var nf *ltypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

// ignoreNotFound makes deleting what is gone no error.
func ignoreNotFound(err error) error {
	if isNotFound(err) {
		return nil
	}
	return err
}

// functionCode is a function's Code property as the Lambda API takes it:
// S3Bucket/S3Key, or ZipFile, CloudFormation's inline source, zipped as
// index.js or index.py as CloudFormation does.
func functionCode(code Props, runtime string) (*ltypes.FunctionCode, error) {
	if src, ok := code["ZipFile"]; ok {
		name := "index.py"
		if strings.HasPrefix(runtime, "nodejs") {
			name = "index.js"
		}
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, ExternalAttrs: 0o644 << 16})
		if err != nil {
			return nil, err
		}
		if _, err := w.Write([]byte(str(src))); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return &ltypes.FunctionCode{ZipFile: buf.Bytes()}, nil
	}
	if code.Str("S3Bucket") == "" || code.Str("S3Key") == "" {
		return nil, fmt.Errorf("Code needs S3Bucket and S3Key, or ZipFile")
	}
	c := &ltypes.FunctionCode{S3Bucket: aws.String(code.Str("S3Bucket")), S3Key: aws.String(code.Str("S3Key"))}
	if v := code.Str("S3ObjectVersion"); v != "" {
		c.S3ObjectVersion = aws.String(v)
	}
	return c, nil
}

// tagsOf turns CloudFormation's [{Key, Value}] tags into a map.
func tagsOf(p Props) map[string]string {
	tags := map[string]string{}
	for _, t := range p.List("Tags") {
		tags[t.Str("Key")] = t.Str("Value")
	}
	return tags
}

var functionHandled = []string{"Code", "Tags", "ReservedConcurrentExecutions", "FunctionName"}

func lambdaTypes(c *Clients) map[string]*ResourceType {
	l := c.Lambda
	function := &ResourceType{
		Replace: []string{"FunctionName", "PackageType"},
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			in := &lambda.CreateFunctionInput{}
			if err := r.Properties.decode(r.Type, in, functionHandled...); err != nil {
				return "", nil, err
			}
			name := r.Properties.Str("FunctionName")
			if name == "" {
				name = physicalName(r.StackName, r.LogicalID, 64, false)
			}
			code, err := functionCode(r.Properties.Map("Code"), r.Properties.Str("Runtime"))
			if err != nil {
				return "", nil, err
			}
			in.FunctionName, in.Code = aws.String(name), code
			if tags := tagsOf(r.Properties); len(tags) > 0 {
				in.Tags = tags
			}
			out, err := l.CreateFunction(ctx, in)
			if err != nil {
				return "", nil, err
			}
			r.PhysicalID = name
			if err := reserved(ctx, l, name, r.Properties); err != nil {
				_, _ = l.DeleteFunction(context.WithoutCancel(ctx), &lambda.DeleteFunctionInput{FunctionName: aws.String(name)})
				return "", nil, err
			}
			return name, map[string]any{"Arn": aws.ToString(out.FunctionArn)}, nil
		},
		Update: func(ctx context.Context, r *Resolved, old map[string]any) (map[string]any, error) {
			in := &lambda.UpdateFunctionConfigurationInput{}
			if err := r.Properties.decode(r.Type, in, append(functionHandled, "Architectures")...); err != nil {
				return nil, err
			}
			in.FunctionName = aws.String(r.PhysicalID)
			// Properties that left the template go back to their defaults.
			if in.Environment == nil {
				in.Environment = &ltypes.Environment{Variables: map[string]string{}}
			}
			if in.Layers == nil {
				in.Layers = []string{}
			}
			if in.Description == nil {
				in.Description = aws.String("")
			}
			if in.MemorySize == nil {
				in.MemorySize = aws.Int32(128)
			}
			if in.Timeout == nil {
				in.Timeout = aws.Int32(3)
			}
			if _, err := l.UpdateFunctionConfiguration(ctx, in); err != nil {
				return nil, err
			}
			oldProps := Props(old)
			if canonical(oldProps["Code"]) != canonical(r.Properties["Code"]) || canonical(old["Architectures"]) != canonical(r.Properties["Architectures"]) {
				code, err := functionCode(r.Properties.Map("Code"), r.Properties.Str("Runtime"))
				if err != nil {
					return nil, err
				}
				uc := &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(r.PhysicalID), S3Bucket: code.S3Bucket, S3Key: code.S3Key,
					S3ObjectVersion: code.S3ObjectVersion, ZipFile: code.ZipFile}
				for _, a := range r.Properties.Strs("Architectures") {
					uc.Architectures = append(uc.Architectures, ltypes.Architecture(a))
				}
				if _, err := l.UpdateFunctionCode(ctx, uc); err != nil {
					return nil, err
				}
			}
			if canonical(old["ReservedConcurrentExecutions"]) != canonical(r.Properties["ReservedConcurrentExecutions"]) {
				if err := reserved(ctx, l, r.PhysicalID, r.Properties); err != nil {
					return nil, err
				}
			}
			return r.Attributes, nil
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			_, err := l.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(r.PhysicalID)})
			return ignoreNotFound(err)
		},
	}

	version := &ResourceType{ // versions are immutable: every change publishes another
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			in := &lambda.PublishVersionInput{}
			if err := r.Properties.decode(r.Type, in, "ProvisionedConcurrencyConfig", "RuntimePolicy"); err != nil {
				return "", nil, err
			}
			out, err := l.PublishVersion(ctx, in)
			if err != nil {
				return "", nil, err
			}
			if n, ok := r.Properties.Map("ProvisionedConcurrencyConfig").Int("ProvisionedConcurrentExecutions"); ok {
				if _, err := l.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: in.FunctionName,
					Qualifier: out.Version, ProvisionedConcurrentExecutions: aws.Int32(n)}); err != nil {
					return "", nil, err
				}
			}
			return aws.ToString(out.FunctionArn), map[string]any{"Version": aws.ToString(out.Version), "FunctionArn": aws.ToString(out.FunctionArn)}, nil
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			_, err := l.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(r.PhysicalID)})
			return ignoreNotFound(err)
		},
	}

	alias := &ResourceType{
		Replace: []string{"Name", "FunctionName"},
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			in := &lambda.CreateAliasInput{}
			if err := r.Properties.decode(r.Type, in, "ProvisionedConcurrencyConfig"); err != nil {
				return "", nil, err
			}
			out, err := l.CreateAlias(ctx, in)
			if err != nil {
				return "", nil, err
			}
			r.PhysicalID = aws.ToString(out.AliasArn)
			if err := aliasProvisioned(ctx, l, r.Properties, nil); err != nil {
				_, _ = l.DeleteAlias(context.WithoutCancel(ctx), &lambda.DeleteAliasInput{FunctionName: in.FunctionName, Name: in.Name})
				return "", nil, err
			}
			return r.PhysicalID, map[string]any{"AliasArn": r.PhysicalID}, nil
		},
		Update: func(ctx context.Context, r *Resolved, old map[string]any) (map[string]any, error) {
			in := &lambda.UpdateAliasInput{}
			if err := r.Properties.decode(r.Type, in, "ProvisionedConcurrencyConfig"); err != nil {
				return nil, err
			}
			if in.Description == nil {
				in.Description = aws.String("")
			}
			if in.RoutingConfig == nil {
				in.RoutingConfig = &ltypes.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{}}
			}
			if _, err := l.UpdateAlias(ctx, in); err != nil {
				return nil, err
			}
			return r.Attributes, aliasProvisioned(ctx, l, r.Properties, old)
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			_, err := l.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String(r.Properties.Str("FunctionName")),
				Name: aws.String(r.Properties.Str("Name"))})
			return ignoreNotFound(err)
		},
	}

	permission := &ResourceType{ // a statement cannot change: every change replaces it
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			in := &lambda.AddPermissionInput{}
			if err := r.Properties.decode(r.Type, in); err != nil {
				return "", nil, err
			}
			in.StatementId = aws.String(physicalName(r.StackName, r.LogicalID, 100, false))
			if _, err := l.AddPermission(ctx, in); err != nil {
				return "", nil, err
			}
			return aws.ToString(in.StatementId), map[string]any{}, nil
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			fn, qualifier := splitQualifier(r.Properties.Str("FunctionName"))
			in := &lambda.RemovePermissionInput{FunctionName: aws.String(fn), StatementId: aws.String(r.PhysicalID)}
			if qualifier != "" {
				in.Qualifier = aws.String(qualifier)
			}
			_, err := l.RemovePermission(ctx, in)
			return ignoreNotFound(err)
		},
	}

	layer := &ResourceType{ // layer versions are immutable
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			in := &lambda.PublishLayerVersionInput{}
			if err := r.Properties.decode(r.Type, in, "Content"); err != nil {
				return "", nil, err
			}
			content := r.Properties.Map("Content")
			in.Content = &ltypes.LayerVersionContentInput{S3Bucket: aws.String(content.Str("S3Bucket")), S3Key: aws.String(content.Str("S3Key"))}
			if in.LayerName == nil {
				in.LayerName = aws.String(physicalName(r.StackName, r.LogicalID, 64, false))
			}
			out, err := l.PublishLayerVersion(ctx, in)
			if err != nil {
				return "", nil, err
			}
			return aws.ToString(out.LayerVersionArn), map[string]any{"LayerVersionArn": aws.ToString(out.LayerVersionArn)}, nil
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			i := strings.LastIndex(r.PhysicalID, ":")
			if i < 0 {
				return nil
			}
			var n int64
			fmt.Sscan(r.PhysicalID[i+1:], &n)
			_, err := l.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String(r.PhysicalID[:i]), VersionNumber: aws.Int64(n)})
			return ignoreNotFound(err)
		},
	}

	url := &ResourceType{
		Replace: []string{"TargetFunctionArn", "Qualifier"},
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			in := &lambda.CreateFunctionUrlConfigInput{}
			if err := r.Properties.decode(r.Type, in, "TargetFunctionArn"); err != nil {
				return "", nil, err
			}
			fn, qualifier := splitQualifier(r.Properties.Str("TargetFunctionArn"))
			in.FunctionName = aws.String(fn)
			if qualifier != "" {
				in.Qualifier = aws.String(qualifier)
			}
			out, err := l.CreateFunctionUrlConfig(ctx, in)
			if err != nil {
				return "", nil, err
			}
			arn := aws.ToString(out.FunctionArn)
			return arn, map[string]any{"FunctionUrl": aws.ToString(out.FunctionUrl), "FunctionArn": arn}, nil
		},
		Update: func(ctx context.Context, r *Resolved, old map[string]any) (map[string]any, error) {
			in := &lambda.UpdateFunctionUrlConfigInput{}
			if err := r.Properties.decode(r.Type, in, "TargetFunctionArn"); err != nil {
				return nil, err
			}
			fn, qualifier := splitQualifier(r.Properties.Str("TargetFunctionArn"))
			in.FunctionName = aws.String(fn)
			if qualifier != "" {
				in.Qualifier = aws.String(qualifier)
			}
			if in.Cors == nil {
				in.Cors = &ltypes.Cors{}
			}
			_, err := l.UpdateFunctionUrlConfig(ctx, in)
			return r.Attributes, err
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			fn, qualifier := splitQualifier(r.Properties.Str("TargetFunctionArn"))
			in := &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String(fn)}
			if qualifier != "" {
				in.Qualifier = aws.String(qualifier)
			}
			_, err := l.DeleteFunctionUrlConfig(ctx, in)
			return ignoreNotFound(err)
		},
	}

	mapping := &ResourceType{
		Replace: []string{"EventSourceArn", "StartingPosition"},
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			in := &lambda.CreateEventSourceMappingInput{}
			if err := r.Properties.decode(r.Type, in, "Tags"); err != nil {
				return "", nil, err
			}
			out, err := l.CreateEventSourceMapping(ctx, in)
			if err != nil {
				return "", nil, err
			}
			return aws.ToString(out.UUID), map[string]any{"Id": aws.ToString(out.UUID), "EventSourceMappingArn": aws.ToString(out.EventSourceMappingArn)}, nil
		},
		Update: func(ctx context.Context, r *Resolved, old map[string]any) (map[string]any, error) {
			in := &lambda.UpdateEventSourceMappingInput{}
			if err := r.Properties.decode(r.Type, in, "Tags", "EventSourceArn", "StartingPosition", "StartingPositionTimestamp"); err != nil {
				return nil, err
			}
			in.UUID = aws.String(r.PhysicalID)
			if in.Enabled == nil {
				in.Enabled = aws.Bool(true)
			}
			_, err := l.UpdateEventSourceMapping(ctx, in)
			return r.Attributes, err
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			_, err := l.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: aws.String(r.PhysicalID)})
			return ignoreNotFound(err)
		},
	}

	putInvokeConfig := func(ctx context.Context, r *Resolved) error {
		in := &lambda.PutFunctionEventInvokeConfigInput{}
		if err := r.Properties.decode(r.Type, in); err != nil {
			return err
		}
		_, err := l.PutFunctionEventInvokeConfig(ctx, in)
		return err
	}
	invokeConfig := &ResourceType{
		Replace: []string{"FunctionName", "Qualifier"},
		Create: func(ctx context.Context, r *Resolved) (string, map[string]any, error) {
			if err := putInvokeConfig(ctx, r); err != nil {
				return "", nil, err
			}
			return r.Properties.Str("FunctionName") + ":" + r.Properties.Str("Qualifier"), map[string]any{}, nil
		},
		Update: func(ctx context.Context, r *Resolved, old map[string]any) (map[string]any, error) {
			return r.Attributes, putInvokeConfig(ctx, r)
		},
		Delete: func(ctx context.Context, r *Resolved) error {
			_, err := l.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{
				FunctionName: aws.String(r.Properties.Str("FunctionName")), Qualifier: aws.String(r.Properties.Str("Qualifier"))})
			return ignoreNotFound(err)
		},
	}

	return map[string]*ResourceType{
		"AWS::Lambda::Function":           function,
		"AWS::Lambda::Version":            version,
		"AWS::Lambda::Alias":              alias,
		"AWS::Lambda::Permission":         permission,
		"AWS::Lambda::LayerVersion":       layer,
		"AWS::Lambda::Url":                url,
		"AWS::Lambda::EventSourceMapping": mapping,
		"AWS::Lambda::EventInvokeConfig":  invokeConfig,
	}
}

// reserved sets or removes a function's reserved concurrency.
func reserved(ctx context.Context, l *lambda.Client, name string, p Props) error {
	if n, ok := p.Int("ReservedConcurrentExecutions"); ok {
		_, err := l.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String(name), ReservedConcurrentExecutions: aws.Int32(n)})
		return err
	}
	_, err := l.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String(name)})
	return ignoreNotFound(err)
}

// aliasProvisioned sets or removes an alias's provisioned concurrency.
func aliasProvisioned(ctx context.Context, l *lambda.Client, p Props, old Props) error {
	fn, name := aws.String(p.Str("FunctionName")), aws.String(p.Str("Name"))
	if n, ok := p.Map("ProvisionedConcurrencyConfig").Int("ProvisionedConcurrentExecutions"); ok {
		_, err := l.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: fn, Qualifier: name,
			ProvisionedConcurrentExecutions: aws.Int32(n)})
		return err
	}
	if old != nil && old["ProvisionedConcurrencyConfig"] != nil {
		_, err := l.DeleteProvisionedConcurrencyConfig(ctx, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: fn, Qualifier: name})
		return ignoreNotFound(err)
	}
	return nil
}

// splitQualifier splits a function ARN or name into the function and its
// qualifier (a version or alias), if any.
func splitQualifier(fn string) (string, string) {
	if strings.HasPrefix(fn, "arn:") {
		parts := strings.Split(fn, ":")
		if len(parts) == 8 {
			return strings.Join(parts[:7], ":"), parts[7]
		}
		return fn, ""
	}
	if name, q, ok := strings.Cut(fn, ":"); ok {
		return name, q
	}
	return fn, ""
}
