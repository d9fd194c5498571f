package credentials

// The scope of a function's temporary credentials. On Lambda a function's
// credentials can do what its execution role's policies allow; Lamina has
// no IAM policies, so every function's role allows the same fixed set: the
// data operations below — invoking functions, reading and writing objects,
// publishing, sending and receiving messages — and nothing else: no
// function management, no credentials, no Lamina-only routes, no metrics.
// The admin key pair is allowed everything.
//
// Operations are named by the signing name of their service (the
// credential scope's service, e.g. "lambda", "s3") and by AWS's name of
// the operation (as the service's API model and SDKs name it, e.g.
// "Invoke", "PutObject"). A service that adds a data operation adds its
// name here.
var functionScope = map[string]map[string]bool{
	"lambda": set("Invoke", "InvokeAsync", "InvokeWithResponseStream", "InvokeFunctionUrl"),
	"s3": set("GetObject", "HeadObject", "PutObject", "CopyObject", "DeleteObject", "DeleteObjects",
		"ListObjects", "ListObjectsV2", "HeadBucket", "GetBucketLocation",
		"CreateMultipartUpload", "UploadPart", "UploadPartCopy", "CompleteMultipartUpload", "AbortMultipartUpload",
		"ListParts", "ListMultipartUploads"),
	"sns": set("Publish", "PublishBatch"),
	"sqs": set("SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage", "DeleteMessageBatch",
		"ChangeMessageVisibility", "ChangeMessageVisibilityBatch", "GetQueueUrl", "GetQueueAttributes"),
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
// call everything).
func Allows(identity any, service, operation string) bool {
	if _, ok := identity.(*Session); !ok {
		return true
	}
	return functionScope[service][operation]
}
