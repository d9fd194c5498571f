// A small CDK app for e2e/deploy_cdk_test.go: a function with a URL, and a
// bucket whose uploads invoke it. The function tells the test what it saw
// through a queue. cdk.out beside it is its `cdk synth` (see README.md).
const cdk = require('aws-cdk-lib');
const lambda = require('aws-cdk-lib/aws-lambda');
const s3 = require('aws-cdk-lib/aws-s3');
const s3n = require('aws-cdk-lib/aws-s3-notifications');
const sqs = require('aws-cdk-lib/aws-sqs');

const app = new cdk.App();
const stack = new cdk.Stack(app, 'CdkApp');
const seen = new sqs.Queue(stack, 'Seen');
const fn = new lambda.Function(stack, 'Handler', {
  runtime: lambda.Runtime.PYTHON_3_12,
  handler: 'app.handler',
  code: lambda.Code.fromAsset('lambda'),
  environment: { QUEUE_URL: seen.queueUrl },
});
seen.grantSendMessages(fn);
const url = fn.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
const bucket = new s3.Bucket(stack, 'Uploads');
bucket.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.LambdaDestination(fn), { prefix: 'in/' });
new cdk.CfnOutput(stack, 'Url', { value: url.url });
new cdk.CfnOutput(stack, 'Bucket', { value: bucket.bucketName });
new cdk.CfnOutput(stack, 'SeenUrl', { value: seen.queueUrl });
app.synth();
