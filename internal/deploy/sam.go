package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// SAMTransform is the transform that marks a SAM template.
const SAMTransform = "AWS::Serverless-2016-10-31"

// Implicit APIs the SAM transform makes for events that name no API.
const (
	implicitRestAPI = "ServerlessRestApi"
	implicitHTTPAPI = "ServerlessHttpApi"
)

// transformSAM rewrites a SAM template's serverless resources into the
// plain resources they stand for, as AWS's SAM transform does, with the
// same logical IDs (MyFunctionRole, MyFunctionVersion<hash>,
// MyFunctionAliaslive, MyFunctionUrl, MyFunction<Event>…). Globals apply
// to every function, API and layer first.
func transformSAM(t *Template) error {
	if !slices.Contains(t.Transform, SAMTransform) {
		for _, r := range t.Resources {
			if strings.HasPrefix(r.Type, "AWS::Serverless::") {
				return fmt.Errorf("Template format error: %s (line %d) needs Transform: %s", r.Type, r.Line, SAMTransform)
			}
		}
		return nil
	}
	for _, tr := range t.Transform {
		if tr != SAMTransform {
			return fmt.Errorf("Template format error: transform %s is not supported by Lamina (only %s)", tr, SAMTransform)
		}
	}
	x := &samTransform{t: t, out: map[string]*Resource{}}
	for _, id := range sortedKeys(t.Resources) {
		r := t.Resources[id]
		if !strings.HasPrefix(r.Type, "AWS::Serverless::") {
			x.out[id] = r
		}
	}
	// APIs first, so that functions' events can add routes to them.
	for _, id := range sortedKeys(t.Resources) {
		r := t.Resources[id]
		switch r.Type {
		case "AWS::Serverless::HttpApi", "AWS::Serverless::Api":
			if err := x.api(id, r); err != nil {
				return err
			}
		}
	}
	for _, id := range sortedKeys(t.Resources) {
		r := t.Resources[id]
		var err error
		switch r.Type {
		case "AWS::Serverless::HttpApi", "AWS::Serverless::Api":
		case "AWS::Serverless::Function":
			err = x.function(id, r)
		case "AWS::Serverless::LayerVersion":
			err = x.layer(id, r)
		default:
			if strings.HasPrefix(r.Type, "AWS::Serverless::") {
				err = fmt.Errorf("Resource %s (line %d) is of type %s, which Lamina does not support", id, r.Line, r.Type)
			}
		}
		if err != nil {
			return err
		}
	}
	t.Resources = x.out
	t.Transform = nil
	t.Globals = nil
	return nil
}

type samTransform struct {
	t   *Template
	out map[string]*Resource
}

// globals returns the Globals section for a kind of resource.
func (x *samTransform) globals(kind string) map[string]any {
	g, _ := x.t.Globals[kind].(map[string]any)
	return g
}

// withGlobals merges a resource's properties over the globals, as SAM
// does: maps merge, lists concatenate, anything else is overridden.
func withGlobals(globals, props map[string]any) map[string]any {
	out := maps.Clone(globals)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range props {
		switch pv := v.(type) {
		case map[string]any:
			if gv, ok := out[k].(map[string]any); ok && !isIntrinsic(pv) && !isIntrinsic(gv) {
				out[k] = withGlobals(gv, pv)
				continue
			}
		case []any:
			if gv, ok := out[k].([]any); ok {
				out[k] = append(slices.Clone(gv), pv...)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// isIntrinsic reports whether a map is an intrinsic function call.
func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

func (x *samTransform) add(id string, from *Resource, fromID, typ string, props map[string]any, dependsOn ...string) *Resource {
	r := &Resource{Type: typ, Properties: props, Condition: from.Condition, DependsOn: dependsOn, Line: from.Line, From: fromID}
	x.out[id] = r
	return r
}

// api makes an HTTP API of an AWS::Serverless::HttpApi or Api: Lamina's
// HTTP APIs serve both.
func (x *samTransform) api(id string, r *Resource) error {
	kind := "HttpApi"
	if r.Type == "AWS::Serverless::Api" {
		kind = "Api"
	}
	props := withGlobals(x.globals(kind), r.Properties)
	for _, k := range sortedKeys(props) {
		switch k {
		case "Name", "StageVariables", "Variables", "Description", "StageName", "Tags", "OpenApiVersion", "EndpointConfiguration":
		default:
			return fmt.Errorf("Resource %s (line %d): property %s of %s is not supported by Lamina", id, r.Line, k, r.Type)
		}
	}
	out := map[string]any{"Name": x.stackName(props["Name"], id), "Routes": []any{}}
	if v, ok := props["StageVariables"]; ok {
		out["StageVariables"] = v
	}
	if v, ok := props["Variables"]; ok {
		out["StageVariables"] = v
	}
	x.add(id, r, id, TypeHTTPAPI, out)
	return nil
}

// stackName is a name property, or the stack's name and the logical ID.
func (x *samTransform) stackName(name any, id string) any {
	if name != nil {
		return name
	}
	return map[string]any{"Fn::Sub": "${AWS::StackName}-" + id}
}

// route adds a route to an API, making the implicit API when needed.
func (x *samTransform) route(apiRef any, implicit, routeKey, fn string, target any, from *Resource) error {
	var apiID string
	switch ref := apiRef.(type) {
	case nil:
		apiID = implicit
		if x.out[apiID] == nil {
			x.add(apiID, &Resource{Line: from.Line}, apiID, TypeHTTPAPI, map[string]any{
				"Name": map[string]any{"Fn::Sub": "${AWS::StackName}-" + apiID}, "Routes": []any{}})
		}
	case map[string]any:
		apiID = str(ref["Ref"])
	}
	api := x.out[apiID]
	if api == nil || api.Type != TypeHTTPAPI {
		return fmt.Errorf("Resource %s (line %d): an event's API must be !Ref of an AWS::Serverless::HttpApi or Api in the template", fn, from.Line)
	}
	routes, _ := api.Properties["Routes"].([]any)
	api.Properties["Routes"] = append(routes, map[string]any{"RouteKey": routeKey, "Function": target})
	return nil
}

// codeOf turns a CodeUri or ContentUri (s3://bucket/key, or
// {Bucket, Key, Version}) into Code or Content; a local path is refused:
// `lamina deploy` and `aws cloudformation package` upload it first.
func codeOf(id string, r *Resource, uri any, what string) (map[string]any, error) {
	switch u := uri.(type) {
	case string:
		if bucket, key, ok := strings.Cut(strings.TrimPrefix(u, "s3://"), "/"); ok && strings.HasPrefix(u, "s3://") {
			return map[string]any{"S3Bucket": bucket, "S3Key": key}, nil
		}
		return nil, fmt.Errorf("Resource %s (line %d): %s %q is a local path; package it first (`lamina deploy` uploads it, as `aws cloudformation package` does)", id, r.Line, what, u)
	case map[string]any:
		code := map[string]any{"S3Bucket": u["Bucket"], "S3Key": u["Key"]}
		if v, ok := u["Version"]; ok {
			code["S3ObjectVersion"] = v
		}
		return code, nil
	case nil:
		return nil, fmt.Errorf("Resource %s (line %d): %s is missing", id, r.Line, what)
	}
	return nil, fmt.Errorf("Resource %s (line %d): %s must be s3://bucket/key or {Bucket, Key}", id, r.Line, what)
}

// functionProps are the properties of AWS::Serverless::Function that carry
// over to AWS::Lambda::Function unchanged.
var functionProps = []string{"FunctionName", "Handler", "Runtime", "MemorySize", "Timeout", "Architectures", "Environment",
	"Layers", "Description", "EphemeralStorage", "ReservedConcurrentExecutions", "KmsKeyArn", "LoggingConfig",
	"RuntimeManagementConfig", "SnapStart", "VpcConfig", "FileSystemConfigs", "ImageConfig", "PackageType"}

// functionSAMProps are the SAM-only properties the transform reads.
var functionSAMProps = []string{"CodeUri", "InlineCode", "Role", "Policies", "AutoPublishAlias", "AutoPublishCodeSha256",
	"AutoPublishAliasAllProperties", "ProvisionedConcurrencyConfig", "FunctionUrlConfig", "DeadLetterQueue", "EventInvokeConfig",
	"Events", "Tags", "Tracing", "DeploymentPreference", "PermissionsBoundary", "VersionDescription", "RolePath",
	"AssumeRolePolicyDocument", "CodeSigningConfigArn"}

func (x *samTransform) function(id string, r *Resource) error {
	props := withGlobals(x.globals("Function"), r.Properties)
	fn := map[string]any{}
	for _, k := range sortedKeys(props) {
		switch {
		case slices.Contains(functionProps, k):
			fn[k] = props[k]
		case !slices.Contains(functionSAMProps, k):
			return fmt.Errorf("Resource %s (line %d): property %s of AWS::Serverless::Function is not supported by Lamina", id, r.Line, k)
		}
	}
	if code, ok := props["InlineCode"]; ok {
		fn["Code"] = map[string]any{"ZipFile": code}
	} else {
		code, err := codeOf(id, r, props["CodeUri"], "CodeUri")
		if err != nil {
			return err
		}
		fn["Code"] = code
	}
	if role, ok := props["Role"]; ok {
		fn["Role"] = role
	} else {
		// SAM makes a role of the function's policies; Lamina has no IAM,
		// and the role is a record (see AWS::IAM::Role).
		x.add(id+"Role", r, id, "AWS::IAM::Role", map[string]any{})
		fn["Role"] = map[string]any{"Fn::GetAtt": []any{id + "Role", "Arn"}}
	}
	if tags, ok := props["Tags"].(map[string]any); ok {
		var list []any
		for _, k := range sortedKeys(tags) {
			list = append(list, map[string]any{"Key": k, "Value": tags[k]})
		}
		fn["Tags"] = list
	}
	if t, ok := props["Tracing"]; ok {
		fn["TracingConfig"] = map[string]any{"Mode": t}
	}
	if dlq, ok := props["DeadLetterQueue"].(map[string]any); ok {
		fn["DeadLetterConfig"] = map[string]any{"TargetArn": dlq["TargetArn"]}
	}
	x.add(id, r, id, "AWS::Lambda::Function", fn)

	// Events, URLs and invoke configs go to the alias when there is one.
	target := any(map[string]any{"Ref": id})
	targetArn := any(map[string]any{"Fn::GetAtt": []any{id, "Arn"}})
	qualifier := any("$LATEST")
	if alias, ok := props["AutoPublishAlias"]; ok {
		hash := sha256.Sum256([]byte(canonical(fn) + canonical(props["AutoPublishCodeSha256"])))
		versionID := id + "Version" + hex.EncodeToString(hash[:])[:10]
		version := map[string]any{"FunctionName": map[string]any{"Ref": id}}
		if d, ok := props["VersionDescription"]; ok {
			version["Description"] = d
		}
		x.add(versionID, r, id, "AWS::Lambda::Version", version)
		aliasID := id + "Alias" + str(alias)
		aliasProps := map[string]any{"Name": alias, "FunctionName": map[string]any{"Ref": id},
			"FunctionVersion": map[string]any{"Fn::GetAtt": []any{versionID, "Version"}}}
		if pc, ok := props["ProvisionedConcurrencyConfig"]; ok {
			aliasProps["ProvisionedConcurrencyConfig"] = pc
		}
		x.add(aliasID, r, id, "AWS::Lambda::Alias", aliasProps)
		// An alias's Ref is its ARN.
		target, targetArn, qualifier = map[string]any{"Ref": aliasID}, map[string]any{"Ref": aliasID}, alias
	} else if _, ok := props["ProvisionedConcurrencyConfig"]; ok {
		return fmt.Errorf("Resource %s (line %d): ProvisionedConcurrencyConfig needs AutoPublishAlias", id, r.Line)
	}

	if urlCfg, ok := props["FunctionUrlConfig"].(map[string]any); ok {
		url := maps.Clone(urlCfg)
		url["TargetFunctionArn"] = target
		x.add(id+"Url", r, id, "AWS::Lambda::Url", url)
		if str(urlCfg["AuthType"]) == "NONE" {
			x.add(id+"UrlPublicPermissions", r, id, "AWS::Lambda::Permission", map[string]any{
				"Action": "lambda:InvokeFunctionUrl", "FunctionName": target, "Principal": "*", "FunctionUrlAuthType": "NONE"})
		}
	}
	if eic, ok := props["EventInvokeConfig"].(map[string]any); ok {
		cfg := map[string]any{"FunctionName": map[string]any{"Ref": id}, "Qualifier": qualifier}
		for _, k := range []string{"MaximumEventAgeInSeconds", "MaximumRetryAttempts"} {
			if v, ok := eic[k]; ok {
				cfg[k] = v
			}
		}
		if dc, ok := eic["DestinationConfig"].(map[string]any); ok {
			dest := map[string]any{}
			for _, k := range []string{"OnSuccess", "OnFailure"} {
				if d, ok := dc[k].(map[string]any); ok {
					dest[k] = map[string]any{"Destination": d["Destination"]}
				}
			}
			cfg["DestinationConfig"] = dest
		}
		deps := []string(nil)
		if qualifier != "$LATEST" {
			deps = []string{id + "Alias" + str(qualifier)}
		}
		x.add(id+"EventInvokeConfig", r, id, "AWS::Lambda::EventInvokeConfig", cfg, deps...)
	}

	events, _ := props["Events"].(map[string]any)
	for _, name := range sortedKeys(events) {
		ev, _ := events[name].(map[string]any)
		typ := str(ev["Type"])
		evProps, _ := ev["Properties"].(map[string]any)
		if evProps == nil {
			evProps = map[string]any{}
		}
		handle, ok := samEvents[typ]
		if !ok {
			return fmt.Errorf("Resource %s (line %d): event %s is of type %s, which Lamina does not support yet", id, r.Line, name, typ)
		}
		if err := handle(x, samEvent{fn: id, name: name, r: r, props: evProps, target: target, targetArn: targetArn}); err != nil {
			return err
		}
	}
	return nil
}

// samEvent is one event of a function, for its handler.
type samEvent struct {
	fn, name string
	r        *Resource
	props    map[string]any
	target   any // the function or its alias, as !Ref
	// targetArn is the ARN of the function or its alias.
	targetArn any
}

func (e samEvent) id() string { return e.fn + e.name }

// check refuses, by name, an event property that is not one of allowed.
func (e samEvent) check(allowed ...string) error {
	for _, k := range sortedKeys(e.props) {
		if !slices.Contains(allowed, k) {
			return fmt.Errorf("Resource %s (line %d): property %s of event %s is not supported by Lamina", e.fn, e.r.Line, k, e.name)
		}
	}
	return nil
}

// permission adds the permission SAM gives a service's principal to
// invoke the event's function for source (an ARN).
func (x *samTransform) permission(e samEvent, principal string, source any) {
	x.add(e.id()+"Permission", e.r, e.fn, "AWS::Lambda::Permission", map[string]any{
		"Action": "lambda:InvokeFunction", "FunctionName": e.target, "Principal": principal, "SourceArn": source})
}

// mappingEvent turns SQS and Kinesis events into an event source mapping
// of the ARN in sourceKey, with the mapping properties allowed.
func mappingEvent(sourceKey string, allowed ...string) func(x *samTransform, e samEvent) error {
	return func(x *samTransform, e samEvent) error {
		if err := e.check(append([]string{sourceKey}, allowed...)...); err != nil {
			return err
		}
		m := map[string]any{"EventSourceArn": e.props[sourceKey], "FunctionName": e.target}
		for _, k := range allowed {
			if v, ok := e.props[k]; ok {
				m[k] = v
			}
		}
		x.add(e.id(), e.r, e.fn, "AWS::Lambda::EventSourceMapping", m)
		return nil
	}
}

// eventBridgeRuleEvent turns an EventBridgeRule event into a rule of its
// pattern with the function as its target, and the permission for
// events.amazonaws.com.
func eventBridgeRuleEvent(x *samTransform, e samEvent) error {
	if err := e.check("Pattern", "EventBusName", "Input", "InputPath", "InputTransformer", "RetryPolicy", "DeadLetterConfig",
		"Target", "RuleName", "State"); err != nil {
		return err
	}
	targetID := any(e.id() + "LambdaTarget")
	if t, ok := e.props["Target"].(map[string]any); ok && t["Id"] != nil {
		targetID = t["Id"]
	}
	target := map[string]any{"Id": targetID, "Arn": e.targetArn}
	for _, k := range []string{"Input", "InputPath", "InputTransformer", "RetryPolicy"} {
		if v, ok := e.props[k]; ok {
			target[k] = v
		}
	}
	if dlc, ok := e.props["DeadLetterConfig"].(map[string]any); ok {
		if dlc["Arn"] == nil {
			return fmt.Errorf("Resource %s (line %d): event %s's DeadLetterConfig needs an Arn (Lamina does not make the queue of Type: SQS)", e.fn, e.r.Line, e.name)
		}
		target["DeadLetterConfig"] = map[string]any{"Arn": dlc["Arn"]}
	}
	rule := map[string]any{"EventPattern": e.props["Pattern"], "Targets": []any{target}}
	for from, to := range map[string]string{"EventBusName": "EventBusName", "RuleName": "Name", "State": "State"} {
		if v, ok := e.props[from]; ok {
			rule[to] = v
		}
	}
	x.add(e.id(), e.r, e.fn, "AWS::Events::Rule", rule)
	x.permission(e, "events.amazonaws.com", map[string]any{"Fn::GetAtt": []any{e.id(), "Arn"}})
	return nil
}

// samEvents turn each event type of a function into resources. A type
// missing here is refused by name.
var samEvents = map[string]func(x *samTransform, e samEvent) error{
	"Api": func(x *samTransform, e samEvent) error {
		return x.route(e.props["RestApiId"], implicitRestAPI, routeKey(e.props), e.fn, e.target, e.r)
	},
	"HttpApi": func(x *samTransform, e samEvent) error {
		key := "$default"
		if e.props["Path"] != nil || e.props["Method"] != nil {
			key = routeKey(e.props)
		}
		return x.route(e.props["ApiId"], implicitHTTPAPI, key, e.fn, e.target, e.r)
	},
	"Schedule":   scheduleEvent("Schedule"),
	"ScheduleV2": scheduleEvent("ScheduleExpression"),
	"SQS": mappingEvent("Queue", "BatchSize", "Enabled", "MaximumBatchingWindowInSeconds", "FilterCriteria",
		"FunctionResponseTypes", "ScalingConfig"),
	"Kinesis": mappingEvent("Stream", "StartingPosition", "StartingPositionTimestamp", "BatchSize", "Enabled",
		"MaximumBatchingWindowInSeconds", "FilterCriteria", "FunctionResponseTypes", "BisectBatchOnFunctionError",
		"MaximumRecordAgeInSeconds", "MaximumRetryAttempts", "ParallelizationFactor", "TumblingWindowInSeconds",
		"DestinationConfig"),
	"SNS": func(x *samTransform, e samEvent) error {
		if err := e.check("Topic", "FilterPolicy", "FilterPolicyScope", "Region", "RedrivePolicy"); err != nil {
			return err
		}
		sub := map[string]any{"Protocol": "lambda", "Endpoint": e.targetArn, "TopicArn": e.props["Topic"]}
		for _, k := range []string{"FilterPolicy", "FilterPolicyScope", "Region", "RedrivePolicy"} {
			if v, ok := e.props[k]; ok {
				sub[k] = v
			}
		}
		x.add(e.id(), e.r, e.fn, "AWS::SNS::Subscription", sub)
		x.permission(e, "sns.amazonaws.com", e.props["Topic"])
		return nil
	},
	"EventBridgeRule": eventBridgeRuleEvent,
	// CloudWatchEvent is EventBridgeRule's older name.
	"CloudWatchEvent": eventBridgeRuleEvent,
	"S3": func(x *samTransform, e samEvent) error {
		ref, _ := e.props["Bucket"].(map[string]any)
		bucketID := str(ref["Ref"])
		bucket := x.out[bucketID]
		if bucket == nil || bucket.Type != "AWS::S3::Bucket" {
			return fmt.Errorf("Resource %s (line %d): event %s's Bucket must be !Ref of an AWS::S3::Bucket in the template", e.fn, e.r.Line, e.name)
		}
		permID := e.fn + e.name + "Permission"
		x.add(permID, e.r, e.fn, "AWS::Lambda::Permission", map[string]any{
			"Action": "lambda:InvokeFunction", "FunctionName": e.target, "Principal": "s3.amazonaws.com",
			"SourceAccount": map[string]any{"Ref": "AWS::AccountId"}})
		var list []any
		switch evs := e.props["Events"].(type) {
		case string:
			list = []any{evs}
		case []any:
			list = evs
		}
		notif, _ := bucket.Properties["NotificationConfiguration"].(map[string]any)
		if notif == nil {
			notif = map[string]any{}
			bucket.Properties["NotificationConfiguration"] = notif
		}
		configs, _ := notif["LambdaConfigurations"].([]any)
		for _, ev := range list {
			c := map[string]any{"Event": ev, "Function": e.targetArn}
			if f, ok := e.props["Filter"]; ok {
				c["Filter"] = f
			}
			configs = append(configs, c)
		}
		notif["LambdaConfigurations"] = configs
		bucket.DependsOn = append(bucket.DependsOn, permID)
		return nil
	},
}

// routeKey is "METHOD /path" of an Api or HttpApi event.
func routeKey(p map[string]any) string {
	method := strings.ToUpper(str(p["Method"]))
	if method == "" || method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
		method = "ANY"
	}
	path := str(p["Path"])
	if path == "" {
		path = "/"
	}
	return method + " " + path
}

// scheduleEvent turns Schedule and ScheduleV2 events into an EventBridge
// schedule rule (Lamina has no EventBridge Scheduler; the rule runs the
// same expressions) and the permission for events.amazonaws.com.
func scheduleEvent(exprKey string) func(x *samTransform, e samEvent) error {
	return func(x *samTransform, e samEvent) error {
		state := "ENABLED"
		if v, ok := e.props["Enabled"]; ok && !truthy(v) && v != nil {
			state = "DISABLED"
		}
		if s := str(e.props["State"]); s != "" {
			state = s
		}
		target := map[string]any{"Id": e.id() + "LambdaTarget", "Arn": e.targetArn}
		if in, ok := e.props["Input"]; ok {
			target["Input"] = in
		}
		rule := map[string]any{"ScheduleExpression": e.props[exprKey], "State": state, "Targets": []any{target}}
		for _, k := range []string{"Name", "Description"} {
			if v, ok := e.props[k]; ok {
				rule[k] = v
			}
		}
		x.add(e.id(), e.r, e.fn, "AWS::Events::Rule", rule)
		x.permission(e, "events.amazonaws.com", map[string]any{"Fn::GetAtt": []any{e.id(), "Arn"}})
		return nil
	}
}

func (x *samTransform) layer(id string, r *Resource) error {
	props := withGlobals(x.globals("LayerVersion"), r.Properties)
	content, err := codeOf(id, r, props["ContentUri"], "ContentUri")
	if err != nil {
		return err
	}
	out := map[string]any{"Content": content, "LayerName": props["LayerName"]}
	if out["LayerName"] == nil {
		out["LayerName"] = id
	}
	for _, k := range sortedKeys(props) {
		switch k {
		case "CompatibleRuntimes", "CompatibleArchitectures", "Description", "LicenseInfo":
			out[k] = props[k]
		case "ContentUri", "LayerName", "RetentionPolicy":
		default:
			return fmt.Errorf("Resource %s (line %d): property %s of AWS::Serverless::LayerVersion is not supported by Lamina", id, r.Line, k)
		}
	}
	x.add(id, r, id, "AWS::Lambda::LayerVersion", out)
	return nil
}
