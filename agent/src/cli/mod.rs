//! The `vnet-agent` command line: the daemon (`serve`) and a client with
//! `az`'s nouns, verbs and flags wherever `az` has them.

mod access_restriction;
mod az;
mod connectivity;
mod create;
mod deployment;
mod exec;
mod exercise;
mod explain;
mod flow_log;
mod flow_verify;
mod gateway;
mod graph;
mod nameresolver;
mod network;
mod output;
mod packet_capture;
mod private_endpoint;
mod progress;
mod table;
mod tcpping;
mod troubleshoot;
mod watcher;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use crate::api::client::{encode, request};
use crate::api::{Daemon, DaemonConfig};
use crate::model::LabConfig;

#[derive(Parser, Debug)]
#[command(
    name = "vnet-agent",
    version,
    about = "Azure App Service regional VNet integration, emulated on a real Linux kernel"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct Global {
    /// Lab name: the prefix of every namespace the lab creates.
    #[arg(long, global = true, env = "VNET_AGENT_LAB", default_value = "vl")]
    lab: String,
    /// The daemon's socket [default: /run/vnet-agent/<lab>.sock].
    #[arg(long, global = true, env = "VNET_AGENT_SOCKET")]
    socket: Option<PathBuf>,
    /// The daemon's state directory [default: /var/lib/vnet-agent/<lab>].
    #[arg(long, global = true, env = "VNET_AGENT_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// The principal requests act as (the lab's role assignments decide what it may do).
    #[arg(
        long,
        global = true,
        env = "VNET_AGENT_PRINCIPAL",
        default_value = "owner"
    )]
    principal: String,
    /// Output format (az's `-o`): json (default), jsonc, table, tsv, yaml or none.
    #[arg(short = 'o', long, global = true)]
    output: Option<output::OutputFormat>,
    /// A JMESPath query over the answer (az's `--query`), applied before `-o`.
    #[arg(long, global = true)]
    query: Option<String>,
}

impl Global {
    /// One request; prints the answer, or Azure's error the way `az` does.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<ExitCode> {
        // A change can be long (a deploy of many instances, a scale): on a
        // terminal, show what the daemon is doing meanwhile.
        let line = (method != "GET").then(|| {
            let label = match method {
                "PUT" | "PATCH" => "applying",
                "DELETE" => "deleting",
                _ => "working",
            };
            progress::start(self.socket(), self.principal.clone(), label)
        });
        let (status, value) = request(&self.socket(), &self.principal, method, path, body)?;
        drop(line);
        if (200..300).contains(&status) {
            self.print(&value)?;
            Ok(ExitCode::SUCCESS)
        } else {
            print_error(&value);
            Ok(ExitCode::FAILURE)
        }
    }

    /// GET `path`: the answer, or `None` once Azure's error is printed.
    fn fetch(&self, path: &str) -> Result<Option<Value>> {
        let (status, value) = request(&self.socket(), &self.principal, "GET", path, None)?;
        if (200..300).contains(&status) {
            Ok(Some(value))
        } else {
            print_error(&value);
            Ok(None)
        }
    }

    /// POSTs `body` to `path`: the answer, or `None` (its error printed).
    fn post(&self, path: &str, body: &Value) -> Result<Option<Value>> {
        let (status, value) = request(&self.socket(), &self.principal, "POST", path, Some(body))?;
        if (200..300).contains(&status) {
            Ok(Some(value))
        } else {
            print_error(&value);
            Ok(None)
        }
    }

    /// As az's generic update: GET the resource, change it, PUT it back
    /// (the API validates the whole resource, as ARM does).
    fn update(&self, id: &str, change: impl FnOnce(&mut Value) -> Result<()>) -> Result<ExitCode> {
        let Some(mut v) = self.fetch(id)? else {
            return Ok(ExitCode::FAILURE);
        };
        change(&mut v)?;
        self.call("PUT", id, Some(&v))
    }

    /// Prints a value this command computed, as a successful answer.
    fn print_value(&self, value: &Value) -> Result<ExitCode> {
        self.print(value)?;
        Ok(ExitCode::SUCCESS)
    }

    /// Prints a successful answer: `--query` first, then `-o`.
    fn print(&self, value: &Value) -> Result<()> {
        if matches!(
            self.output,
            Some(
                output::OutputFormat::Dot
                    | output::OutputFormat::Mermaid
                    | output::OutputFormat::Html
            )
        ) {
            anyhow::bail!("-o dot, mermaid and html draw the lab: they are for `lab graph` only");
        }
        let value = match &self.query {
            Some(q) => output::query(value, q)?,
            None => value.clone(),
        };
        print!(
            "{}",
            output::render(&value, self.output.unwrap_or(output::OutputFormat::Json))
        );
        Ok(())
    }

    /// Whether `-o` or `--query` was given (some commands print a summary otherwise).
    fn output_is_explicit(&self) -> bool {
        self.output.is_some() || self.query.is_some()
    }

    fn socket(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/run/vnet-agent/{}.sock", self.lab)))
    }
    fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/var/lib/vnet-agent/{}", self.lab)))
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon: REST on a Unix socket, reconciling the kernel to the lab.
    Serve(ServeArgs),
    /// Deploy an ARM template into a resource group (the short form of
    /// `deployment group create`).
    Deploy(deployment::CreateArgs),
    /// Deployments (as `az deployment group ...`).
    #[command(subcommand)]
    Deployment(deployment::DeploymentCmd),
    /// Generic resource commands (as `az resource`).
    #[command(subcommand)]
    Resource(ResourceCmd),
    /// Web app commands (as `az webapp`).
    #[command(subcommand)]
    Webapp(az::WebappCmd),
    /// Function app commands (as `az functionapp`: the web app verbs on a function app).
    #[command(subcommand)]
    Functionapp(az::WebappCmd),
    /// Resource groups (as `az group`).
    #[command(subcommand)]
    Group(create::GroupCmd),
    /// Lab VMs (as `az vm`).
    #[command(subcommand)]
    Vm(create::VmCmd),
    /// Storage accounts (as `az storage`).
    #[command(subcommand)]
    Storage(create::StorageCmd),
    /// Key vaults (as `az keyvault`).
    #[command(subcommand)]
    Keyvault(create::KeyvaultCmd),
    /// App Service plans and their integrations (as `az appservice`).
    #[command(subcommand)]
    Appservice(az::AppserviceCmd),
    /// Role assignments (as `az role`).
    #[command(subcommand)]
    Role(az::RoleCmd),
    /// VNets, subnets, NSGs, route tables, effective routes and rules,
    /// gateways and their connections (as `az network`).
    #[command(subcommand)]
    Network(network::NetworkCmd),
    /// Subscription settings (as `az account`).
    #[command(subcommand)]
    Account(az::AccountCmd),
    /// The lab's principals (as `az ad user`).
    #[command(subcommand)]
    Ad(az::AdCmd),
    /// Resource providers (as `az provider`).
    #[command(subcommand)]
    Provider(az::ProviderCmd),
    /// Run a real program inside an app sandbox, a VM or an internet host.
    Exec(exec::ExecArgs),
    /// Remove every namespace, link, mount, rule and process of the lab and stop the daemon.
    Down {
        /// Also forget the deployed resources.
        #[arg(long)]
        purge: bool,
    },
    /// The lab itself: status and a forced reconcile.
    #[command(subcommand)]
    Lab(LabCmd),
    /// Internal: the host of one emulated service (run by the daemon in the
    /// service's namespace).
    #[command(hide = true)]
    ServiceHost {
        /// The configuration the daemon writes (re-read when it changes).
        #[arg(long)]
        config: PathBuf,
    },
    /// Internal: the App Service front end of one stamp (run by the daemon
    /// in the stamp's namespace).
    #[command(hide = true)]
    FrontEnd {
        /// The configuration the daemon writes (re-read when it changes).
        #[arg(long)]
        config: PathBuf,
    },
    /// Internal: the BGP daemon (BIRD) of a gateway or an on-premises
    /// router (run by the daemon in its namespace).
    #[command(hide = true)]
    BgpSpeaker {
        /// The configuration the daemon writes (BIRD reconfigures when it changes).
        #[arg(long)]
        config: PathBuf,
    },
}

/// `serve --log-format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// The lab's public address pool (outbound IPs, internet hosts).
    #[arg(long, default_value = "198.18.0.0/15")]
    public_pool: ipnet::Ipv4Net,
    /// Outbound IP addresses per App Service plan.
    #[arg(long, default_value_t = 2)]
    outbound_ips_per_plan: u32,
    /// Seconds a released subnet address waits before it is handed out again
    /// (after a scale, an upgrade or a disconnect).
    #[arg(long, default_value_t = crate::model::DEFAULT_ADDRESS_COOLDOWN_SECS)]
    address_cooldown_secs: u64,
    /// SNAT ports each plan instance gets on the stamp's direct path (Azure
    /// preallocates 128 per instance); more concurrent connections to one
    /// destination fail, as SNAT port exhaustion does.
    #[arg(long, default_value_t = crate::model::DEFAULT_SNAT_PORTS_PER_INSTANCE)]
    snat_ports_per_instance: u32,
    /// Seconds between audits: every namespace read back and compared with
    /// the plan (level-triggered). Changes apply at once and proportionally;
    /// a namespace deleted from outside is noticed within a second; the
    /// audit is the safety net for other drift, so it is rare by default.
    #[arg(long, default_value_t = 600)]
    resync_interval: u64,
    /// Seconds between the records VNet flow logs write (Azure writes about
    /// once a minute; tests ask for less).
    #[arg(long, default_value_t = 60)]
    flow_log_interval: u64,
    /// Also serve Prometheus metrics (`GET /metrics`) on 127.0.0.1:PORT;
    /// the API socket always serves them.
    #[arg(long, env = "VNET_AGENT_METRICS_PORT")]
    metrics_port: Option<u16>,
    /// Log lines as text, or as one JSON object per line (for log shippers).
    #[arg(
        long,
        value_enum,
        default_value = "text",
        env = "VNET_AGENT_LOG_FORMAT"
    )]
    log_format: LogFormat,
    /// A group (name or number) whose members may use the API socket
    /// (root:GROUP 0660): they run the CLI without sudo, and can do all the
    /// lab's API can (deploy, exec into namespaces as root, tear down).
    #[arg(long, env = "VNET_AGENT_SOCKET_GROUP")]
    socket_group: Option<String>,
    /// JSON map from Unix user (name or `uid:N`) to the principals it may act
    /// as, its default first: callers are known by the kernel's peer
    /// credentials, not by what they claim.
    #[arg(long, env = "VNET_AGENT_PRINCIPAL_MAP")]
    principal_map: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum ResourceCmd {
    /// Show resources by id.
    Show {
        #[arg(long, required = true, num_args = 1..)]
        ids: Vec<String>,
    },
    /// Delete resources by id.
    Delete {
        #[arg(long, required = true, num_args = 1..)]
        ids: Vec<String>,
    },
    /// List resources.
    List {
        #[arg(short = 'g', long = "resource-group")]
        resource_group: Option<String>,
    },
    /// Move resources to another resource group or subscription.
    Move(az::MoveArgs),
}

#[derive(Subcommand, Debug)]
enum LabCmd {
    /// The daemon's status: generation, kernel writes, processes.
    Status,
    /// Reconcile now and print what was written to the kernel.
    Reconcile,
    /// The lab CA's certificate file (trust it to reach the emulated services over HTTPS).
    Ca,
    /// The lab's topology: `-o dot|mermaid|html|json`, or `--serve PORT` (live counters).
    Graph(graph::GraphArgs),
    /// Lab exercises that check themselves with real traffic (`labs/`).
    #[command(subcommand)]
    Exercise(exercise::ExerciseCmd),
    /// The traffic end of exercise checks (run inside a namespace by `exercise check`).
    #[command(subcommand, hide = true)]
    Probe(exercise::ProbeCmd),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ERROR: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let g = cli.global.clone();
    match cli.command {
        Command::Serve(args) => serve(&g, args).map(|_| ExitCode::SUCCESS),
        Command::Exec(args) => exec::run(&g.socket(), &g.principal, args),
        Command::Deploy(args) => deployment::create(&g, &args),
        Command::Deployment(cmd) => deployment::run(&g, cmd),
        Command::Resource(ResourceCmd::Show { ids }) => each_id(&g, "GET", &ids),
        Command::Resource(ResourceCmd::Delete { ids }) => each_id(&g, "DELETE", &ids),
        Command::Resource(ResourceCmd::List { resource_group }) => {
            let q = resource_group
                .map(|rg| format!("?resourceGroup={}", encode(&rg)))
                .unwrap_or_default();
            // az prints the list itself (so `--query "[?type=='...']"` works).
            match g.fetch(&format!("/resources{q}"))? {
                Some(v) => g.print_value(&v["value"]),
                None => Ok(ExitCode::FAILURE),
            }
        }
        Command::Resource(ResourceCmd::Move(args)) => az::resource_move(&g, args),
        Command::Webapp(cmd) => az::webapp(&g, cmd, false),
        Command::Functionapp(cmd) => az::webapp(&g, cmd, true),
        Command::Group(cmd) => create::group(&g, cmd),
        Command::Vm(cmd) => create::vm(&g, cmd),
        Command::Storage(cmd) => create::storage(&g, cmd),
        Command::Keyvault(cmd) => create::keyvault(&g, cmd),
        Command::Appservice(cmd) => az::appservice(&g, cmd),
        Command::Role(cmd) => az::role(&g, cmd),
        Command::Provider(cmd) => az::provider(&g, cmd),
        Command::Ad(cmd) => az::ad(&g, cmd),
        Command::Account(cmd) => az::account(&g, cmd),
        Command::Network(cmd) => network::run(&g, cmd),
        Command::Down { purge } => down(&g, purge),
        Command::Lab(LabCmd::Status) => g.call("GET", "/lab/status", None),
        Command::Lab(LabCmd::Reconcile) => g.call("POST", "/lab/reconcile", None),
        Command::Lab(LabCmd::Ca) => g.call("GET", "/lab/ca", None),
        Command::Lab(LabCmd::Graph(args)) => graph::run(&g, args),
        Command::Lab(LabCmd::Exercise(cmd)) => exercise::run(&g, cmd),
        Command::Lab(LabCmd::Probe(cmd)) => exercise::probe(cmd),
        Command::ServiceHost { config } => {
            crate::services::host::run(&config).map(|_| ExitCode::SUCCESS)
        }
        Command::FrontEnd { config } => crate::frontend::run(&config).map(|_| ExitCode::SUCCESS),
        Command::BgpSpeaker { config } => crate::bgp::speaker::run(&config),
    }
}

/// Azure's error the way `az` prints it: `ERROR: (Code) message`.
pub(super) fn print_error(answer: &Value) {
    let code = answer
        .pointer("/error/code")
        .and_then(|v| v.as_str())
        .unwrap_or("Error");
    let msg = answer
        .pointer("/error/message")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    eprintln!("ERROR: ({code}) {msg}");
    // Inner errors, as az prints a DeploymentFailed's details.
    for d in answer
        .pointer("/error/details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        eprintln!(
            "Inner error: ({}) {}",
            d["code"].as_str().unwrap_or("Error"),
            d["message"].as_str().unwrap_or("")
        );
    }
}

fn each_id(g: &Global, method: &str, ids: &[String]) -> Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for id in ids {
        if g.call(method, id, None)? != ExitCode::SUCCESS {
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

fn down(g: &Global, purge: bool) -> Result<ExitCode> {
    let socket = g.socket();
    let line = progress::start(socket.clone(), g.principal.clone(), "down");
    let answer = request(
        &socket,
        &g.principal,
        "POST",
        &format!("/lab/down?purge={purge}"),
        None,
    );
    drop(line);
    match answer {
        Ok((status, value)) if status != 200 => {
            // Refused (a caller without the role): the lab stays as it is.
            print_error(&value);
            Ok(ExitCode::FAILURE)
        }
        Ok((_, value)) => {
            println!("{}", serde_json::to_string_pretty(&value)?);
            // The daemon exits after answering; wait for its socket to go.
            for _ in 0..100 {
                if !socket.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(_) => {
            // No daemon: clean up from the state directory alone.
            eprintln!(
                "no daemon at {}; removing the lab {:?} directly",
                socket.display(),
                g.lab
            );
            let state_dir = g.state_dir();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            if state_dir.exists() {
                crate::supervisor::Supervisor::open(&state_dir, &g.lab)?.stop_all()?;
            }
            let report =
                rt.block_on(crate::dataplane::Dataplane::new(&g.lab, &state_dir).teardown())?;
            if purge && state_dir.join("state.json").exists() {
                std::fs::remove_file(state_dir.join("state.json"))?;
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "teardown": report, "purged": purge }))?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn serve(g: &Global, args: ServeArgs) -> Result<()> {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match args.log_format {
        // One JSON object per line, with the spans it ran in (the request's
        // method and resource id, the reconcile step).
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    validate_lab_name(&g.lab)?;
    // Everything the daemon writes (state with app settings and secrets,
    // service configurations, the lab CA's key, logs) is root's alone:
    // files 0600, directories 0700. Supervised processes get 022 back.
    // SAFETY: umask has no preconditions.
    unsafe { libc::umask(0o077) };
    let config = DaemonConfig {
        lab: LabConfig {
            name: g.lab.clone(),
            public_pool: args.public_pool,
            outbound_ips_per_plan: args.outbound_ips_per_plan,
            address_cooldown_secs: args.address_cooldown_secs,
            snat_ports_per_instance: args.snat_ports_per_instance,
        },
        state_dir: g.state_dir(),
        socket: g.socket(),
        resync_interval: Duration::from_secs(args.resync_interval.max(1)),
        flow_log_interval: Duration::from_secs(args.flow_log_interval.max(1)),
        metrics_port: args.metrics_port,
        socket_group: args.socket_group,
        principal_map: args
            .principal_map
            .as_deref()
            .map(crate::api::caller::PrincipalMap::load)
            .transpose()?,
    };
    // glibc gives each new thread its own malloc arena (up to 8 per core),
    // and every nft command runs on a thread of its own: without a cap the
    // arenas keep the peaks of many concurrent batches. Two suffice here.
    // SAFETY: mallopt before any thread of this process is started.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let daemon = Daemon::start(config).await?;
        crate::api::serve(daemon).await
    })
}

/// Lab names prefix namespace names and appear in link names: keep them short and plain.
fn validate_lab_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 8
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        bail!("lab name {name:?} must be 1 to 8 characters of a-z and 0-9");
    }
    Ok(())
}
