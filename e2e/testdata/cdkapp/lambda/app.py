import json, os, boto3

def handler(event, context):
    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:s3":
        key = records[0]["s3"]["object"]["key"]
        boto3.client("sqs").send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody="object " + key)
        return "ok"
    return {"statusCode": 200, "body": json.dumps({"hello": "from cdk", "path": event.get("rawPath")})}
