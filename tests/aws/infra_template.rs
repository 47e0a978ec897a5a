//! `infra/template.yaml` deployed to the emulator's CloudFormation by `heimdall-deploy` (the
//! same code `infra/deploy.sh` runs): the stack completes, its resources are wired to each
//! other (queue → dispatcher, state machine ARN in the functions' environment, dead-letter
//! queue, table indexes, runtime and architecture, events queue → events function), the
//! config's triggers become the triggers stack, the state machine's role may trace (X-Ray), the
//! API stage throttles, a second deploy changes nothing, and destroy removes both.

use std::collections::HashMap;

use aws_sdk_cloudformation::types::StackStatus;
use heimdall_deploy::{DeploySettings, Deployed, FUNCTIONS, TEMPLATE, deploy, destroy, triggers_stack_name};
use heimdall_tests::emulator::emulator;

use crate::support::unique;

/// A config with one trigger of each source.
const CONFIG: &str = r#"commands: []
clusters: []
triggers:
  - {name: nightly, schedule: "0 2 * * *", job: {name: nightly, version: "1", command_criteria: [type:ping]}}
  - {name: landed-csv, s3: {bucket: landing, prefix: in/}, job: {name: landed, version: "1", command_criteria: [type:ping]}}
  - {name: glue-failed, event_pattern: {source: [aws.glue]}, job: {name: glue, version: "1", command_criteria: [type:ping]}}
"#;


/// A function package. The emulator stores it without running it, so its bytes are enough;
/// `scripts/lambda-bench` builds the real ones.
fn package() -> Vec<u8> {
    b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec()
}

/// An IAM query-protocol call to the emulator (the tests have no IAM client), its answer
/// with `:` and `/` decoded.
async fn iam_query(body: &str) -> String {
    let answer = reqwest::Client::new()
        .post(&emulator().endpoint)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{body}: {}", answer.status());
    answer.text().await.unwrap().replace("%3A", ":").replace("%2F", "/").replace("%22", "\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_deploys_and_its_resources_are_wired_together() {
    let sdk = emulator().sdk_config().await;
    let packages = tempfile::tempdir().unwrap();
    for function in FUNCTIONS {
        std::fs::write(packages.path().join(format!("{function}.zip")), package()).unwrap();
    }
    let config_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config_file.path(), CONFIG).unwrap();
    let stack = unique("hd");
    let settings = DeploySettings {
        stack_name: stack.clone(),
        code_bucket: unique("code"),
        packages: packages.path().to_owned(),
        version: "v1".into(),
        jwt_issuer: "https://issuer.example".into(),
        jwt_audience: "heimdall-client".into(),
        config: Some(config_file.path().to_owned()),
        // The data plugins' rights: the conditional policies are made and attached.
        parameters: vec![
            ("DynamoDbTableArns".into(), "arn:aws:dynamodb:us-east-1:123456789012:table/orders".into()),
            ("EmrVirtualClusterArns".into(), "arn:aws:emr-containers:us-east-1:123456789012:/virtualclusters/vc1".into()),
            ("EmrJobExecutionRoleArns".into(), "arn:aws:iam::123456789012:role/spark-jobs".into()),
            ("StageName".into(), "prod".into()),
            ("AssumableRoleArns".into(), "arn:aws:iam::210987654321:role/heimdall-reader".into()),
        ],
    };

    // A JWT deployment without its issuer is refused before anything is uploaded.
    let no_issuer = DeploySettings { jwt_issuer: String::new(), ..settings.clone() };
    let refused = deploy(&sdk, &no_issuer).await.unwrap_err().to_string();
    assert!(refused.contains("--jwt-issuer") && refused.contains("AuthType=IAM"), "{refused}");

    assert_eq!(deploy(&sdk, &settings).await.unwrap(), Deployed::Created);

    let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
    let described = cloudformation.describe_stacks().stack_name(&stack).send().await.unwrap();
    let deployed = &described.stacks()[0];
    assert_eq!(deployed.stack_status(), Some(&StackStatus::CreateComplete), "{:?}", deployed.stack_status_reason());
    let outputs: HashMap<&str, &str> =
        deployed.outputs().iter().map(|o| (o.output_key().unwrap(), o.output_value().unwrap())).collect();

    // The functions: arm64 (declared; the emulator ignores it), their runtime, and each other's
    // names in their environment.
    assert_eq!(TEMPLATE.matches("Architectures: [arm64]").count(), FUNCTIONS.len());
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let mut environments = HashMap::new();
    for function in FUNCTIONS {
        let configuration = lambda.get_function_configuration().function_name(format!("{stack}-{function}")).send().await.unwrap();
        assert_eq!(configuration.runtime().map(|r| r.as_str()), Some("provided.al2023"), "{function}");
        environments.insert(function, configuration.environment().unwrap().variables().unwrap().clone());
    }
    let dispatcher = &environments["dispatcher"];
    assert_eq!(dispatcher["HEIMDALL_STATE_MACHINE_ARN"], outputs["StateMachineArn"]);
    assert_eq!(dispatcher["HEIMDALL_TABLE"], outputs["JobsTableName"]);
    assert_eq!(dispatcher["HEIMDALL_PLUGIN_FUNCTION"], format!("{stack}-plugin-{{plugin}}"));
    let api = &environments["api"];
    assert_eq!(api["HEIMDALL_STATE_MACHINE_ARN"], outputs["StateMachineArn"]);
    assert_eq!(api["HEIMDALL_QUEUE_URL"], outputs["JobsQueueUrl"]);
    assert_eq!(api["AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH"], "true");
    assert_eq!(api["HEIMDALL_PLUGIN_LOG_GROUP"], format!("/aws/lambda/{stack}-plugins"), "async jobs link to their steps' logs");
    // The deployed config, where every function reads it at cold start.
    let config_location = format!("s3://{}/heimdall/v1/config.yml", settings.code_bucket);
    for function in FUNCTIONS {
        assert_eq!(environments[function]["HEIMDALL_CONFIG"], config_location, "{function}");
        // Every function routes or runs jobs with the live catalog; only the api seeds it.
        assert_eq!(environments[function]["HEIMDALL_CATALOG_TABLE"], outputs["CatalogTableName"], "{function}");
        assert_eq!(environments[function].get("HEIMDALL_SEED_CATALOG").map(String::as_str), (function == "api").then_some("true"), "{function}");
    }
    let (config_text, _) = heimdall_functions::read_config(&sdk, Some(&config_location)).await.unwrap();
    assert_eq!(config_text, CONFIG);

    // The queue feeds the dispatcher, reporting partial batch failures, and redrives to its DLQ.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_name = outputs["JobsQueueUrl"].rsplit('/').next().unwrap();
    let queue_url = sqs.get_queue_url().queue_name(queue_name).send().await.unwrap().queue_url.unwrap();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let queue_arn = &attributes[&aws_sdk_sqs::types::QueueAttributeName::QueueArn];
    let redrive = &attributes[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy];
    assert!(redrive.contains("JobsDeadLetterQueue") && redrive.contains("\"maxReceiveCount\": 5") || redrive.contains("\"maxReceiveCount\":5"), "{redrive}");
    let mappings = lambda.list_event_source_mappings().function_name(format!("{stack}-dispatcher")).send().await.unwrap();
    let mapping = &mappings.event_source_mappings()[0];
    assert_eq!(mapping.event_source_arn(), Some(queue_arn.as_str()));
    assert_eq!(mapping.function_response_types().iter().map(|t| t.as_str()).collect::<Vec<_>>(), ["ReportBatchItemFailures"]);

    // The dead-letter queue feeds the janitor, which the scheduler also invokes every minute.
    let dead_letter_arn = redrive.split('"').find(|part| part.starts_with("arn:")).unwrap();
    let mappings = lambda.list_event_source_mappings().function_name(format!("{stack}-janitor")).send().await.unwrap();
    let mapping = &mappings.event_source_mappings()[0];
    assert_eq!(mapping.event_source_arn(), Some(dead_letter_arn));
    assert_eq!(mapping.function_response_types().iter().map(|t| t.as_str()).collect::<Vec<_>>(), ["ReportBatchItemFailures"]);
    assert_eq!(environments["janitor"]["HEIMDALL_STATE_MACHINE_ARN"], outputs["StateMachineArn"]);

    // A named stage serves under its name.
    assert!(outputs["ApiUrl"].starts_with("https://") && outputs["ApiUrl"].ends_with("/prod"), "{}", outputs["ApiUrl"]);

    // The events queue feeds the events function the same way.
    let events_queue_arn = outputs["EventsQueueArn"];
    let mappings = lambda.list_event_source_mappings().function_name(format!("{stack}-events")).send().await.unwrap();
    let mapping = &mappings.event_source_mappings()[0];
    assert_eq!(mapping.event_source_arn(), Some(events_queue_arn));
    assert_eq!(mapping.function_response_types().iter().map(|t| t.as_str()).collect::<Vec<_>>(), ["ReportBatchItemFailures"]);
    // The data policies exist where their parameters name resources, and only there. (The
    // emulator lists the queue policy, which it does not model, without a logical id.)
    let resources = cloudformation.list_stack_resources().stack_name(&stack).send().await.unwrap();
    let logical_ids: Vec<&str> = resources.stack_resource_summaries().iter().filter_map(|r| r.logical_resource_id()).collect();
    for present in ["DynamoDbReadPolicy", "EmrJobRunPolicy", "AssumeClusterRolesPolicy", "PluginSnowflakeFunction", "SchedulerRole", "ExecutionEndRule", "EmrJobRunEndRule", "JanitorSchedulerRole"] {
        assert!(logical_ids.contains(&present), "{present} missing from {logical_ids:?}");
    }
    for absent in ["GlueCatalogReadPolicy", "SnowflakeKeyReadPolicy"] {
        assert!(!logical_ids.contains(&absent), "{absent} made without its parameter");
    }
    // The state machine's role may trace (TracingConfiguration) as well as invoke and log.
    let state_machine_role = resources
        .stack_resource_summaries()
        .iter()
        .find(|r| r.logical_resource_id() == Some("StateMachineRole"))
        .and_then(|r| r.physical_resource_id())
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let policy = iam_query(&format!("Action=GetRolePolicy&Version=2010-05-08&RoleName={state_machine_role}&PolicyName=invoke-plugins-log-and-trace")).await;
    for action in ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets", "lambda:InvokeFunction"] {
        assert!(policy.contains(action), "the state machine role lacks {action}: {policy}");
    }

    // The API stage throttles every route, by parameters with defaults. (The emulator's
    // CloudFormation does not model API Gateway v2: the template's stage is read instead.)
    let stage = TEMPLATE.split("\n  ApiStage:\n").nth(1).unwrap().split("\n\n").next().unwrap();
    assert!(stage.contains("DefaultRouteSettings:"), "{stage}");
    assert!(stage.contains("ThrottlingRateLimit: !Ref ApiThrottlingRateLimit"), "{stage}");
    assert!(stage.contains("ThrottlingBurstLimit: !Ref ApiThrottlingBurstLimit"), "{stage}");
    // A parameter's `Default:`, read from its block of the template.
    let default = |parameter: &str| {
        let block = TEMPLATE.split(&format!("\n  {parameter}:\n")).nth(1).unwrap();
        block.lines().take_while(|line| line.starts_with("    ")).find_map(|line| line.trim().strip_prefix("Default: ").map(str::to_owned))
    };
    assert_eq!(default("ApiThrottlingRateLimit").as_deref(), Some("50"));
    assert_eq!(default("ApiThrottlingBurstLimit").as_deref(), Some("100"));

    // The config's triggers: one rule per event trigger, one schedule per scheduled one (the
    // emulator's CloudFormation does not model EventBridge Scheduler: the rules are checked
    // here, the schedule's resource in the unit tests of triggers_stack).
    let triggers = cloudformation.list_stack_resources().stack_name(triggers_stack_name(&stack)).send().await.unwrap();
    let mut kinds: Vec<(&str, &str)> = triggers
        .stack_resource_summaries()
        .iter()
        .filter(|r| r.resource_type() == Some("AWS::Events::Rule"))
        .map(|r| (r.logical_resource_id().unwrap(), r.resource_status().unwrap().as_str()))
        .collect();
    kinds.sort();
    assert_eq!(kinds, [("TriggerGlueFailed", "CREATE_COMPLETE"), ("TriggerLandedCsv", "CREATE_COMPLETE")]);

    // The table answers every listing (and the active-jobs count) through its indexes.
    let table = aws_sdk_dynamodb::Client::new(&sdk).describe_table().table_name(outputs["JobsTableName"]).send().await.unwrap();
    let mut indexes: Vec<&str> = table.table().unwrap().global_secondary_indexes().iter().filter_map(|i| i.index_name()).collect();
    indexes.sort();
    assert_eq!(indexes, ["by_active_user", "by_created", "by_name", "by_status", "by_updated", "by_user"]);
    // The emulator's CloudFormation records the state machine (from the definition uploaded
    // beside the packages) without handing it to its Step Functions: check the record.
    let resources = cloudformation.list_stack_resources().stack_name(&stack).send().await.unwrap();
    let machine = resources
        .stack_resource_summaries()
        .iter()
        .find(|r| r.logical_resource_id() == Some("AsyncJobStateMachine"))
        .unwrap();
    assert_eq!(machine.resource_status().map(|s| s.as_str()), Some("CREATE_COMPLETE"));
    assert_eq!(machine.physical_resource_id(), Some(outputs["StateMachineArn"]));

    // Deploying the same again changes nothing; destroying removes the stack.
    let before: Vec<_> = resources.stack_resource_summaries().iter().map(|r| r.physical_resource_id().map(str::to_owned)).collect();
    let again = deploy(&sdk, &settings).await.unwrap();
    assert!(matches!(again, Deployed::Unchanged | Deployed::Updated), "{again:?}");
    let after = cloudformation.list_stack_resources().stack_name(&stack).send().await.unwrap();
    let after: Vec<_> = after.stack_resource_summaries().iter().map(|r| r.physical_resource_id().map(str::to_owned)).collect();
    assert_eq!(before, after, "a second deploy replaced resources");
    destroy(&sdk, &stack).await.unwrap();
    for name in [stack.clone(), triggers_stack_name(&stack)] {
        let gone = cloudformation.describe_stacks().stack_name(&name).send().await;
        assert!(gone.is_err() || gone.unwrap().stacks()[0].stack_status() == Some(&StackStatus::DeleteComplete), "{name}");
    }
}
