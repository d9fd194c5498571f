package credentials

// The scope of a function's temporary credentials. On Lambda a function's
// credentials can do what its execution role's policies allow; Lamina has
// no IAM policies, so every function's role allows the same fixed set:
// the data operations below — invoking functions, reading and writing
// objects, publishing to topics — and nothing else: no function
// management, no credentials, no Lamina-only routes, no metrics. The admin
// key pair is allowed everything.
//
// functionScope is the one list of what functions' credentials may call.
// An operation is named by the signing name of its service (the credential
// scope's service: "lambda", "s3", "sns") and AWS's name of the operation
// (as the service's API model and the SDKs name it: "Invoke",
// "PutObject", "Publish"). A service that serves a data operation adds its
// name here, and checks every request with Allows as soon as it knows the
// operation (before reading the body when the operation is in the path or
// a header; after, for protocols that carry it in the body), as the
// frontend's admission does for the Lambda API. The s3 and sns entries are
// those of the S3 and SNS services of issue 13; sqs those of the queues.
var functionScope = map[string]map[string]bool{
	"lambda": set("Invoke", "InvokeAsync", "InvokeWithResponseStream", "InvokeFunctionUrl"),
	"s3": set("GetObject", "HeadObject", "PutObject", "CopyObject", "DeleteObject", "DeleteObjects",
		"ListObjects", "ListObjectsV2", "HeadBucket", "GetBucketLocation",
		"CreateMultipartUpload", "UploadPart", "UploadPartCopy", "CompleteMultipartUpload", "AbortMultipartUpload",
		"ListParts", "ListMultipartUploads"),
	"sns": set("Publish", "PublishBatch"),
	"sqs": set("GetQueueUrl", "GetQueueAttributes", "SendMessage", "SendMessageBatch", "ReceiveMessage",
		"DeleteMessage", "DeleteMessageBatch", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch"),
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// Allows reports whether a caller may call operation of service: identity
// is what the API's key lookup said of the caller's key, a *Session for a
// function's temporary credentials (which may call the operations of
// functions' scope) and anything else for the admin key pair (which may
// call everything). An assumed role's session (Session.Assumed) has the
// admin's scope: only the admin may assume a role.
func Allows(identity any, service, operation string) bool {
	if s, ok := identity.(*Session); !ok || s.Assumed {
		return true
	}
	return functionScope[service][operation]
}
