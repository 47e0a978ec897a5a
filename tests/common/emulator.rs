//! The AWS emulator for the tests: moto's server (DESIGN.md, "Local testing without Docker"),
//! started once per test binary from the project's pinned venv, with Step Functions execution
//! on, and in front of it the Lambda router: moto's Step Functions engine sends every AWS call
//! it makes to `MOTO_PORT`, where this router runs the invoked function's real handler code
//! in-process and forwards everything else to moto.

use std::net::TcpListener as StdListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use heimdall_emulator::lambda_router::{LambdaHandler, LambdaResult};
use heimdall_emulator::lambda_router::LambdaRouter;
use serde_json::json;

pub struct Emulator {
    /// moto's own endpoint: what our AWS clients use.
    pub endpoint: String,
    /// The router's port (moto's `MOTO_PORT`).
    pub router_port: u16,
    router: LambdaRouter,
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn venv() -> PathBuf {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/python-env");
    let output = Command::new(&script).stderr(Stdio::inherit()).output().expect("run scripts/python-env");
    assert!(output.status.success(), "scripts/python-env failed");
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// The emulator of this test binary, started on first use.
pub fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(start)
}

/// `moto` with no input, its output only with `TEST_LOG`, and killed when the thread that
/// spawns it ends (PR_SET_PDEATHSIG), so no emulator outlives its test binary.
fn tied_to_this_thread(mut moto: Command) -> Command {
    moto.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("TEST_LOG").is_some() { Stdio::inherit() } else { Stdio::null() });
    // SAFETY: prctl in the child between fork and exec only sets a process attribute.
    unsafe {
        moto.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    moto
}

fn start() -> Emulator {
    let moto_port = free_port();
    let router_port = free_port();
    let router = LambdaRouter::default();
    let app = router.app(format!("http://127.0.0.1:{moto_port}"));
    let moto_url = format!("http://127.0.0.1:{moto_port}");
    let venv = venv();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    // One thread owns moto (PR_SET_PDEATHSIG ties moto's life to this thread, which lives as
    // long as the test binary) and runs the router on its own runtime.
    std::thread::Builder::new()
        .name("emulator".into())
        .spawn(move || {
            let mut moto = Command::new(venv.join("bin/python3"));
            moto.args(["-c", &format!("{DYNAMODB_WRITES_SERIALIZED}\nfrom moto.server import main\nmain(sys.argv[1:])\n"), "-H", "127.0.0.1", "-p", &moto_port.to_string()])
                .env("MOTO_PORT", router_port.to_string());
            let mut moto = tied_to_this_thread(moto).spawn().expect("start moto_server");
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", router_port)).await.unwrap();
                let client = reqwest::Client::new();
                let server = tokio::spawn(async move { axum::serve(listener, app).await });
                wait_for_moto(&client, &moto_url).await;
                // Turn on the Step Functions interpreter (state machines created later execute).
                client
                    .post(format!("{moto_url}/moto-api/config"))
                    .json(&json!({"stepfunctions": {"execute_state_machine": true}}))
                    .send()
                    .await
                    .expect("configure moto")
                    .error_for_status()
                    .expect("moto accepts its config");
                ready_tx.send(()).unwrap();
                let _ = server.await;
            });
            let _ = moto.kill();
            let _ = moto.wait();
        })
        .unwrap();
    ready_rx.recv_timeout(Duration::from_secs(90)).expect("the emulator started");
    Emulator { endpoint: format!("http://127.0.0.1:{moto_port}"), router_port, router }
}

async fn wait_for_moto(client: &reqwest::Client, moto_url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.get(format!("{moto_url}/moto-api/")).send().await.is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Emulator {
    /// Makes `name` invocable by the state machines (its ARN's last part).
    pub fn register_function(&self, name: &str, handler: LambdaHandler) {
        self.router.register(name, handler);
    }

    /// How many times the router ran `name`.
    pub fn invocations_of(&self, name: &str) -> usize {
        self.router.invocations_of(name)
    }

    /// The SDK config every test client uses: moto's endpoint, a fixed region, test keys.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "tests"))
            .load()
            .await
    }

    /// The same, but through the router, which counts every call of clients made from it (and
    /// from configs derived from it, assumed roles' included) on the returned counter, apart
    /// from other tests' calls.
    pub async fn counted_sdk_config(&self) -> (aws_config::SdkConfig, CallCounter) {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let app = format!("counted-{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(format!("http://127.0.0.1:{}", self.router_port))
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "tests"))
            .app_name(aws_config::AppName::new(app.clone()).expect("a valid app name"))
            .load()
            .await;
        (config, CallCounter { app, router: self.router.clone() })
    }

    /// Answers `method path` with `answer` instead of moto, for calls through the router.
    pub fn override_answer(&self, method: &str, path: &str, answer: serde_json::Value) {
        self.router.override_answer(method, path, answer);
    }


    /// The ARN moto gives a function `name` (its fixed test account).
    pub fn function_arn(&self, name: &str) -> String {
        format!("arn:aws:lambda:us-east-1:123456789012:function:{name}")
    }
}

/// The AWS calls of the clients of one [`Emulator::counted_sdk_config`].
#[derive(Clone)]
pub struct CallCounter {
    app: String,
    router: LambdaRouter,
}

impl CallCounter {
    /// Its calls so far, as `service:Operation`, in order.
    pub fn calls(&self) -> Vec<String> {
        self.router.forwarded_calls_of(&self.app)
    }
}

/// A second moto server, apart from [`emulator`], whose IAM enforcement the tests turn on with
/// [`EnforcedEmulator::enforce`] once their setup is done (moto starts with
/// `INITIAL_NO_AUTH_ACTION_COUNT` unset: nothing is checked until then). After that every
/// request is checked against the policies of its caller: an IAM user's access key or an
/// assumed role's temporary credentials (the test keys of [`Emulator::sdk_config`] are refused).
///
/// moto runs under [`IAM_RESOURCES_SHIM`], which gives moto's evaluator the resource ARNs it
/// does not work out itself (see there); no Lambda router, no Step Functions interpreter.
pub struct EnforcedEmulator {
    pub endpoint: String,
    enforced: std::sync::atomic::AtomicBool,
}

/// The IAM-enforcing emulator of this test binary, started on first use.
pub fn enforced_emulator() -> &'static EnforcedEmulator {
    static ENFORCED: OnceLock<EnforcedEmulator> = OnceLock::new();
    ENFORCED.get_or_init(start_enforced)
}

/// moto 5 authorizes SQS, STS, IAM and S3 requests against their resource ARNs, but every
/// other service's against `*`, which no statement naming an ARN matches, and it names every
/// action after the API operation. This shim, loaded before moto's server, supplies what IAM
/// itself evaluates for the calls Heimdall makes:
///
/// - DynamoDB: the table ARN, or `table/T/index/I` for a Query or Scan of an index; PartiQL
///   `ExecuteStatement` as `dynamodb:PartiQLSelect|Insert|Update|Delete` on the table it names;
/// - Glue `GetTable`/`GetTables`/`GetDatabase`: the catalog, the database and the table, each
///   checked (as IAM does);
/// - Step Functions: the state machine or execution ARN;
/// - EMR on EKS: the virtual cluster or job run ARN; `StartJobRun` also checks `iam:PassRole`
///   of its execution role (what AWS checks for the caller; moto's EMR does not);
/// - SSM parameters and Secrets Manager secrets: their ARNs;
/// - S3 `DeleteObjects`: `s3:DeleteObject` on each key, not on the bucket (moto checks the bucket).
///
/// And it completes the roles moto's CloudFormation makes: their `ManagedPolicyArns` are
/// attached (moto ignores them), and their inline policies, kept as objects where the
/// evaluator expects JSON text, are read. A bodiless GET's signature is checked over the empty
/// payload it was signed with (moto refuses EMR on EKS DescribeJobRun otherwise). Refusals of JSON-protocol calls come as
/// `AccessDeniedException` (moto answers XML, which their SDKs cannot read).
/// moto's DynamoDB runs a transaction by copying the tables it touches and, when a condition
/// fails, putting the copies back: under concurrent requests (moto's server is threaded) that
/// undoes or resurrects other requests' writes, which DynamoDB never does. This shim, loaded
/// before moto's server, makes its DynamoDB writes one at a time, as DynamoDB's are atomic.
pub const DYNAMODB_WRITES_SERIALIZED: &str = r#"
import sys, threading
from moto.dynamodb.models import DynamoDBBackend
_dynamodb_writes = threading.RLock()
def _one_at_a_time(name):
    original = getattr(DynamoDBBackend, name)
    def serialized(self, *args, **kwargs):
        with _dynamodb_writes:
            return original(self, *args, **kwargs)
    setattr(DynamoDBBackend, name, serialized)
for _name in ("transact_write_items", "put_item", "update_item", "delete_item"):
    _one_at_a_time(_name)
"#;

pub const IAM_RESOURCES_SHIM: &str = r#"
import json, re, sys
from moto.core.authorization import ActionAuthenticatorMixin
from moto.iam import access_control

_authorize = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action

def _authorize_each(self, resource="*"):
    # A list of (action or None, resource): each must be allowed.
    checks = resource if isinstance(resource, list) else [(None, resource)]
    for action, arn in checks:
        if action is None:
            _authorize(self, arn)
            continue
        self._get_action = lambda action=action: action
        try:
            _authorize(self, arn)
        finally:
            del self._get_action

ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = _authorize_each

_init = access_control.IAMRequestBase.__init__

def _init_full_action(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    action = kwargs.get("action")
    if isinstance(action, str) and ":" in action:  # another service's action, e.g. iam:PassRole
        self._action = action

access_control.IAMRequestBase.__init__ = _init_full_action

# A bodiless GET (EMR on EKS DescribeJobRun) is signed over an empty payload; moto signs its
# parsed parameters instead, and refuses the signature.
_create_aws_request = access_control.IAMRequestBase._create_aws_request

def _create_aws_request_bodiless(self):
    request = _create_aws_request(self)
    if self._method in ("GET", "HEAD", "DELETE") and not self._body:
        request.data = b""
    return request

access_control.IAMRequestBase._create_aws_request = _create_aws_request_bodiless

# Roles made by moto's CloudFormation keep their inline policies as objects, not JSON text.
_policy_init = access_control.IAMPolicy.__init__

def _policy_init_any(self, policy):
    if isinstance(policy, dict) and "policy_document" not in policy:
        policy = json.dumps(policy)
    _policy_init(self, policy)

access_control.IAMPolicy.__init__ = _policy_init_any

# moto's CloudFormation makes a role's inline policies but ignores its ManagedPolicyArns.
from moto.iam.models import Role, iam_backends
from moto.utilities.utils import get_partition
_role_from_cloudformation = Role.create_from_cloudformation_json.__func__

def _role_with_managed_policies(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    role = _role_from_cloudformation(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    backend = iam_backends[account_id][get_partition(region_name)]
    for arn in cloudformation_json["Properties"].get("ManagedPolicyArns") or []:
        if arn:
            backend.attach_role_policy(arn, role.name)
    return role

Role.create_from_cloudformation_json = classmethod(_role_with_managed_policies)

# A refusal as the JSON services answer it (AccessDeniedException), not as XML, which their
# SDKs cannot read.
from moto.core.exceptions import JsonRESTError
_raise_access_denied = access_control.IAMRequest._raise_access_denied
_check_action_permitted = access_control.IAMRequestBase.check_action_permitted

def _check_noting_resource(self, resource):
    self._checked_resource = resource
    _check_action_permitted(self, resource)

def _raise_json_access_denied(self):
    json_protocol = bool(self._headers.get("X-Amz-Target")) or self._service == "emr-containers"
    if json_protocol:
        raise JsonRESTError(
            "AccessDeniedException",
            f"User: {self._access_key.arn} is not authorized to perform: {self._action} on resource: {getattr(self, '_checked_resource', '*')}",
        )
    _raise_access_denied(self)

access_control.IAMRequestBase.check_action_permitted = _check_noting_resource
access_control.IAMRequest._raise_access_denied = _raise_json_access_denied

def _body(self):
    try:
        return json.loads(self.raw_body or b"{}")
    except Exception:
        return {}

def _where(self):
    return f"{self.region}:{self.current_account}"

def _dynamodb(self):
    body, action = _body(self), self._get_action()
    table = f"arn:aws:dynamodb:{_where(self)}:table/"
    if action == "ExecuteStatement":
        statement = body.get("Statement", "")
        kind = (statement.split() or ["SELECT"])[0].upper()
        verb = {"SELECT": "Select", "INSERT": "Insert", "UPDATE": "Update", "DELETE": "Delete"}.get(kind, "Select")
        found = re.search(r'(?:FROM|INTO|UPDATE)\s+"([^"]+)"(?:\."([^"]+)")?', statement, re.I)
        if not found:
            return "*"
        arn = table + found.group(1) + (f"/index/{found.group(2)}" if found.group(2) else "")
        return [("PartiQL" + verb, arn)]
    if action == "TransactWriteItems":
        # AWS authorizes each item of a transaction as its own action on its own table.
        verbs = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
        return [(verb, table + item[kind]["TableName"]) for item in body.get("TransactItems", []) for kind, verb in verbs.items() if kind in item] or "*"
    name = body.get("TableName")
    if not name:
        return "*"
    if body.get("IndexName"):
        return table + name + "/index/" + body["IndexName"]
    return table + name

def _glue(self):
    body = _body(self)
    account = body.get("CatalogId") or self.current_account
    base = f"arn:aws:glue:{self.region}:{account}:"
    resources = [base + "catalog"]
    database = body.get("DatabaseName") or (body.get("Name") if self._get_action() == "GetDatabase" else None)
    if database:
        resources.append(base + "database/" + database)
        if self._get_action() == "GetTable" and body.get("Name"):
            resources.append(base + f"table/{database}/{body['Name']}")
    return [(None, arn) for arn in resources]

def _stepfunctions(self):
    body = _body(self)
    return body.get("stateMachineArn") or body.get("executionArn") or "*"

def _emrcontainers(self):
    found = re.search(r"/virtualclusters/([^/?]+)(?:/jobruns(?:/([^/?]+))?)?", self.path)
    if not found:
        return "*"
    cluster = f"arn:aws:emr-containers:{_where(self)}:/virtualclusters/{found.group(1)}"
    if found.group(2):
        return cluster + "/jobruns/" + found.group(2)
    if self._get_action() == "StartJobRun":
        role = _body(self).get("executionRoleArn", "*")
        return [(None, cluster), ("iam:PassRole", role)]
    return cluster

def _ssm(self):
    name = _body(self).get("Name")
    if not name:
        return "*"
    return f"arn:aws:ssm:{_where(self)}:parameter/" + name.lstrip("/")

def _secretsmanager(self):
    secret = _body(self).get("SecretId")
    if not secret:
        return "*"
    from moto.secretsmanager.models import secretsmanager_backends
    secrets = secretsmanager_backends[self.current_account][self.region].secrets
    return secrets[secret].arn if secret in secrets else f"arn:aws:secretsmanager:{_where(self)}:secret:{secret}"

from moto.dynamodb.responses import DynamoHandler
from moto.glue.responses import GlueResponse
from moto.stepfunctions.responses import StepFunctionResponse
from moto.emrcontainers.responses import EMRContainersResponse
from moto.ssm.responses import SimpleSystemManagerResponse
from moto.secretsmanager.responses import SecretsManagerResponse
DynamoHandler._determine_resource = _dynamodb
GlueResponse._determine_resource = _glue
StepFunctionResponse._determine_resource = _stepfunctions
EMRContainersResponse._determine_resource = _emrcontainers
SimpleSystemManagerResponse._determine_resource = _ssm
SecretsManagerResponse._determine_resource = _secretsmanager

from moto.s3.responses import S3Response
_s3_authorize = S3Response._authenticate_and_authorize_s3_action

def _s3_authorize_keys(self, bucket_name=None, key_name=None):
    if key_name is None and bucket_name and self.data.get("Action") == "DeleteObject" and self.is_delete_keys():
        keys = re.findall(rb"<Key>([^<]*)</Key>", self.body if isinstance(self.body, bytes) else self.body.encode())
        for key in keys:
            _s3_authorize(self, bucket_name=bucket_name, key_name=key.decode())
        return
    _s3_authorize(self, bucket_name=bucket_name, key_name=key_name)

S3Response._authenticate_and_authorize_s3_action = _s3_authorize_keys

from moto.server import main
main(sys.argv[1:])
"#;

fn start_enforced() -> EnforcedEmulator {
    let port = free_port();
    let venv = venv();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    // As for the shared emulator: the thread that starts moto lives as long as moto may.
    std::thread::Builder::new()
        .name("enforced-emulator".into())
        .spawn(move || {
            let mut moto = Command::new(venv.join("bin/python3"));
            moto.args(["-c", &format!("{DYNAMODB_WRITES_SERIALIZED}\n{IAM_RESOURCES_SHIM}"), "-H", "127.0.0.1", "-p", &port.to_string()])
                .env_remove("INITIAL_NO_AUTH_ACTION_COUNT");
            let mut moto = tied_to_this_thread(moto).spawn().expect("start moto_server (IAM enforced)");
            let deadline = Instant::now() + Duration::from_secs(60);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "moto_server (IAM enforced) did not start");
                std::thread::sleep(Duration::from_millis(100));
            }
            ready_tx.send(()).unwrap();
            let _ = moto.wait();
        })
        .unwrap();
    ready_rx.recv_timeout(Duration::from_secs(90)).expect("the IAM-enforced emulator started");
    EnforcedEmulator { endpoint: format!("http://127.0.0.1:{port}"), enforced: std::sync::atomic::AtomicBool::new(false) }
}

impl EnforcedEmulator {
    /// The test keys, for setup before [`EnforcedEmulator::enforce`] (refused after it).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        self.sdk_config_as(aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "tests")).await
    }

    /// An SDK config acting with `credentials` (e.g. an assumed role's).
    pub async fn sdk_config_as(&self, credentials: aws_sdk_sqs::config::Credentials) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(credentials)
            .load()
            .await
    }

    /// Turns IAM enforcement on for every later request (`POST /moto-api/reset-auth` with `0`).
    pub async fn enforce(&self) {
        reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.endpoint))
            .body("0")
            .send()
            .await
            .expect("reach moto")
            .error_for_status()
            .expect("moto turns IAM enforcement on");
        self.enforced.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_enforced(&self) -> bool {
        self.enforced.load(std::sync::atomic::Ordering::SeqCst)
    }
}
