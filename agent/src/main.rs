fn main() -> std::process::ExitCode {
    vnet_agent::cli::main()
}
