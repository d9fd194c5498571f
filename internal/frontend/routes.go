package frontend

import "github.com/lamina-project/lamina"

// routes registers every operation of the API. Paths and methods are AWS's
// (botocore's service model for lambda 2015-03-31).
func (f *Frontend) routes() {
	codeUpload := int64(lamina.MaxCodeUploadRequest)
	// A code upload holds its body, the zip decoded from the body's base64,
	// and what the store buffers while it writes the zip.
	const codeUploadCopies = 3

	f.handle("POST /2015-03-31/functions", operation{name: "CreateFunction", maxBody: codeUpload, bodyCopies: codeUploadCopies, handle: f.createFunction})
	f.handle("GET /2015-03-31/functions", operation{name: "ListFunctions", handle: f.listFunctions})
	f.handle("GET /2015-03-31/functions/{name}", operation{name: "GetFunction", handle: f.getFunction})
	f.handle("DELETE /2015-03-31/functions/{name}", operation{name: "DeleteFunction", handle: f.deleteFunction})
	f.handle("GET /2015-03-31/functions/{name}/configuration", operation{name: "GetFunctionConfiguration", handle: f.getFunctionConfiguration})
	f.handle("PUT /2015-03-31/functions/{name}/configuration", operation{name: "UpdateFunctionConfiguration", handle: f.updateFunctionConfiguration})
	f.handle("PUT /2015-03-31/functions/{name}/code", operation{name: "UpdateFunctionCode", maxBody: codeUpload, bodyCopies: codeUploadCopies, handle: f.updateFunctionCode})

	f.handle("POST /2015-03-31/functions/{name}/invocations", operation{name: "Invoke", maxBody: lamina.MaxSyncPayload, tooLarge: invokeTooLarge, handle: f.invoke})

	f.handle("POST /2021-11-15/functions/{name}/response-streaming-invocations", operation{name: "InvokeWithResponseStream", maxBody: lamina.MaxSyncPayload, tooLarge: invokeTooLarge, handle: f.invokeWithResponseStream})

	f.handle("POST /2014-11-13/functions/{name}/invoke-async", operation{name: "InvokeAsync", maxBody: lamina.MaxInvokeAsyncPayload, tooLarge: invokeTooLarge, handle: f.invokeAsync})

	const eventInvokeConfig = "/2019-09-25/functions/{name}/event-invoke-config"
	f.handle("PUT "+eventInvokeConfig, operation{name: "PutFunctionEventInvokeConfig", handle: f.putEventInvokeConfig})
	f.handle("POST "+eventInvokeConfig, operation{name: "UpdateFunctionEventInvokeConfig", handle: f.updateEventInvokeConfig})
	f.handle("GET "+eventInvokeConfig, operation{name: "GetFunctionEventInvokeConfig", handle: f.getEventInvokeConfig})
	f.handle("DELETE "+eventInvokeConfig, operation{name: "DeleteFunctionEventInvokeConfig", handle: f.deleteEventInvokeConfig})
	f.handle("GET "+eventInvokeConfig+"/list", operation{name: "ListFunctionEventInvokeConfigs", handle: f.listEventInvokeConfigs})
	f.handle("GET /_lamina/async/{name}", operation{name: "GetAsyncStatus", handle: f.asyncStatus})
	f.handle("GET /_lamina/runtimes", operation{name: "ListRuntimes", handle: f.describeRuntimes})
	f.handle("GET /_lamina/nodes", operation{name: "ListNodes", handle: f.listNodes})

	const functions = "/2015-03-31/functions/{name}"
	f.handle("POST "+functions+"/versions", operation{name: "PublishVersion", handle: f.publishVersion})
	f.handle("GET "+functions+"/versions", operation{name: "ListVersionsByFunction", handle: f.listVersionsByFunction})
	f.handle("POST "+functions+"/aliases", operation{name: "CreateAlias", handle: f.createAlias})
	f.handle("GET "+functions+"/aliases", operation{name: "ListAliases", handle: f.listAliases})
	f.handle("GET "+functions+"/aliases/{alias}", operation{name: "GetAlias", handle: f.getAlias})
	f.handle("PUT "+functions+"/aliases/{alias}", operation{name: "UpdateAlias", handle: f.updateAlias})
	f.handle("DELETE "+functions+"/aliases/{alias}", operation{name: "DeleteAlias", handle: f.deleteAlias})
	f.handle("POST "+functions+"/policy", operation{name: "AddPermission", handle: f.addPermission})
	f.handle("GET "+functions+"/policy", operation{name: "GetPolicy", handle: f.getPolicy})
	f.handle("DELETE "+functions+"/policy/{sid}", operation{name: "RemovePermission", handle: f.removePermission})

	const layers = "/2018-10-31/layers"
	const layerVersion = layers + "/{layer}/versions/{version}"
	f.handle("GET "+layers, operation{name: "ListLayers", handle: f.listLayers})
	f.handle("POST "+layers+"/{layer}/versions", operation{name: "PublishLayerVersion", maxBody: codeUpload, bodyCopies: codeUploadCopies, handle: f.publishLayerVersion})
	f.handle("GET "+layers+"/{layer}/versions", operation{name: "ListLayerVersions", handle: f.listLayerVersions})
	f.handle("GET "+layerVersion, operation{name: "GetLayerVersion", handle: f.getLayerVersion})
	f.handle("DELETE "+layerVersion, operation{name: "DeleteLayerVersion", handle: f.deleteLayerVersion})
	f.handle("POST "+layerVersion+"/policy", operation{name: "AddLayerVersionPermission", handle: f.addLayerVersionPermission})
	f.handle("GET "+layerVersion+"/policy", operation{name: "GetLayerVersionPolicy", handle: f.getLayerVersionPolicy})
	f.handle("DELETE "+layerVersion+"/policy/{sid}", operation{name: "RemoveLayerVersionPermission", handle: f.removeLayerVersionPermission})

	f.handle("PUT /2017-10-31/functions/{name}/concurrency", operation{name: "PutFunctionConcurrency", handle: f.putFunctionConcurrency})
	f.handle("DELETE /2017-10-31/functions/{name}/concurrency", operation{name: "DeleteFunctionConcurrency", handle: f.deleteFunctionConcurrency})
	f.handle("GET /2019-09-30/functions/{name}/concurrency", operation{name: "GetFunctionConcurrency", handle: f.getFunctionConcurrency})
	const provisioned = "/2019-09-30/functions/{name}/provisioned-concurrency"
	f.handle("PUT "+provisioned, operation{name: "PutProvisionedConcurrencyConfig", handle: f.putProvisionedConcurrency})
	f.handle("GET "+provisioned, operation{name: "GetProvisionedConcurrencyConfig", handle: f.getProvisionedConcurrency})
	f.handle("DELETE "+provisioned, operation{name: "DeleteProvisionedConcurrencyConfig", handle: f.deleteProvisionedConcurrency})

	const url = "/2021-10-31/functions/{name}/url"
	f.handle("POST "+url, operation{name: "CreateFunctionUrlConfig", handle: f.createFunctionURLConfig})
	f.handle("GET "+url, operation{name: "GetFunctionUrlConfig", handle: f.getFunctionURLConfig})
	f.handle("PUT "+url, operation{name: "UpdateFunctionUrlConfig", handle: f.updateFunctionURLConfig})
	f.handle("DELETE "+url, operation{name: "DeleteFunctionUrlConfig", handle: f.deleteFunctionURLConfig})
	f.handle("GET /2021-10-31/functions/{name}/urls", operation{name: "ListFunctionUrlConfigs", handle: f.listFunctionURLConfigs})

	const apis = "/_lamina/apis"
	f.handle("POST "+apis, operation{name: "CreateHttpApi", handle: f.createHTTPAPI})
	f.handle("GET "+apis, operation{name: "ListHttpApis", handle: f.listHTTPAPIs})
	f.handle("GET "+apis+"/{api}", operation{name: "GetHttpApi", handle: f.getHTTPAPI})
	f.handle("PATCH "+apis+"/{api}", operation{name: "UpdateHttpApi", handle: f.updateHTTPAPI})
	f.handle("DELETE "+apis+"/{api}", operation{name: "DeleteHttpApi", handle: f.deleteHTTPAPI})
	f.handle("PUT "+apis+"/{api}/routes", operation{name: "PutRoute", handle: f.putRoute})
	f.handle("DELETE "+apis+"/{api}/routes", operation{name: "DeleteRoute", handle: f.deleteRoute})

	const mappings = "/2015-03-31/event-source-mappings"
	f.handle("POST "+mappings, operation{name: "CreateEventSourceMapping", handle: f.createEventSourceMapping})
	f.handle("GET "+mappings, operation{name: "ListEventSourceMappings", handle: f.listEventSourceMappings})
	f.handle("GET "+mappings+"/{uuid}", operation{name: "GetEventSourceMapping", handle: f.getEventSourceMapping})
	f.handle("PUT "+mappings+"/{uuid}", operation{name: "UpdateEventSourceMapping", handle: f.updateEventSourceMapping})
	f.handle("DELETE "+mappings+"/{uuid}", operation{name: "DeleteEventSourceMapping", handle: f.deleteEventSourceMapping})

	f.handle("GET /2016-08-19/account-settings", operation{name: "GetAccountSettings", handle: f.getAccountSettings})

	const codeSigning = "/2020-04-22/code-signing-configs"
	f.handle("POST "+codeSigning, operation{name: "CreateCodeSigningConfig", handle: f.createCodeSigningConfig})
	f.handle("GET "+codeSigning, operation{name: "ListCodeSigningConfigs", handle: f.listCodeSigningConfigs})
	f.handle("GET "+codeSigning+"/{arn}", operation{name: "GetCodeSigningConfig", handle: f.getCodeSigningConfig})
	f.handle("PUT "+codeSigning+"/{arn}", operation{name: "UpdateCodeSigningConfig", handle: f.updateCodeSigningConfig})
	f.handle("DELETE "+codeSigning+"/{arn}", operation{name: "DeleteCodeSigningConfig", handle: f.deleteCodeSigningConfig})
	f.handle("GET "+codeSigning+"/{arn}/functions", operation{name: "ListFunctionsByCodeSigningConfig", handle: f.listFunctionsByCodeSigningConfig})
	const functionCodeSigning = "/2020-06-30/functions/{name}/code-signing-config"
	f.handle("PUT "+functionCodeSigning, operation{name: "PutFunctionCodeSigningConfig", handle: f.putFunctionCodeSigningConfig})
	f.handle("GET "+functionCodeSigning, operation{name: "GetFunctionCodeSigningConfig", handle: f.getFunctionCodeSigningConfig})
	f.handle("DELETE "+functionCodeSigning, operation{name: "DeleteFunctionCodeSigningConfig", handle: f.deleteFunctionCodeSigningConfig})

	const runtimeManagement = "/2021-07-20/functions/{name}/runtime-management-config"
	f.handle("PUT "+runtimeManagement, operation{name: "PutRuntimeManagementConfig", handle: f.putRuntimeManagementConfig})
	f.handle("GET "+runtimeManagement, operation{name: "GetRuntimeManagementConfig", handle: f.getRuntimeManagementConfig})

	const recursion = "/2024-08-31/functions/{name}/recursion-config"
	f.handle("PUT "+recursion, operation{name: "PutFunctionRecursionConfig", handle: f.putFunctionRecursionConfig})
	f.handle("GET "+recursion, operation{name: "GetFunctionRecursionConfig", handle: f.getFunctionRecursionConfig})

	for _, r := range refusedRoutes {
		f.handle(r.pattern, operation{name: r.name, refused: r.reason, handle: refusal(r.name, r.reason)})
	}

	f.handle("POST /2017-03-31/tags/{arn}", operation{name: "TagResource", handle: f.tagResource})
	f.handle("GET /2017-03-31/tags/{arn}", operation{name: "ListTags", handle: f.listTags})
	f.handle("DELETE /2017-03-31/tags/{arn}", operation{name: "UntagResource", handle: f.untagResource})

	f.handle("GET "+codeDownloadPath+"{digest}", operation{name: "DownloadCode", public: true, handle: f.downloadCode})

	if f.cfg.Metrics != nil {
		f.handle("GET /metrics", operation{name: "GetMetrics", handle: func(rq *request) error {
			f.cfg.Metrics.ServeHTTP(rq.w, rq.r)
			return nil
		}})
	}
	f.handle("/", operation{name: "Unknown", handle: f.unknownOperation})
}
