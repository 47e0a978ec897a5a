//! The functions read the commands and clusters at cold start from where `HEIMDALL_CONFIG`
//! says: a packaged file, an S3 object or an SSM parameter, deployed with the stack.

use heimdall_adapters_aws::s3_client;
use heimdall_functions::read_config;
use heimdall_tests::emulator::emulator;

use crate::support::unique;

const CONFIG: &str = "commands:\n  - {name: hello, version: '1', plugin: ping, tags: [type:ping]}\nclusters:\n  - {name: here, version: '1'}\n";

#[tokio::test]
async fn the_config_is_read_from_s3_or_ssm_and_a_missing_one_is_named() {
    let sdk = emulator().sdk_config().await;
    let bucket = unique("config");
    let s3 = s3_client(&sdk);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object().bucket(&bucket).key("heimdall/config.yml").body(CONFIG.as_bytes().to_vec().into()).send().await.unwrap();
    let parameter = format!("/heimdall/{}/config", unique("stack"));
    aws_sdk_ssm::Client::new(&sdk).put_parameter().name(&parameter).value(CONFIG).r#type(aws_sdk_ssm::types::ParameterType::String).send().await.unwrap();

    for location in [format!("s3://{bucket}/heimdall/config.yml"), format!("ssm:{parameter}")] {
        let (text, name) = read_config(&sdk, Some(&location)).await.unwrap();
        assert_eq!((text.as_str(), name.as_str()), (CONFIG, location.as_str()));
    }
    let (bundled, _) = read_config(&sdk, None).await.unwrap();
    assert!(bundled.contains("ping-0.0.1"));

    let missing = format!("s3://{bucket}/nope.yml");
    let error = read_config(&sdk, Some(&missing)).await.unwrap_err();
    assert!(format!("{error:#}").contains(&missing), "{error:#}");
}
