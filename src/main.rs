use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    // A bug must not print a backtrace into a pipeline log: one line, exit 3.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("azp-preflight: internal error: {info}");
    }));
    let result = std::panic::catch_unwind(|| {
        let env = azp_preflight::env::AgentEnv::from_process();
        let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
        let mut stdout = std::io::stdout().lock();
        let mut stderr = std::io::stderr();
        let mut io = azp_preflight::app::Io {
            stdout_is_terminal: std::io::stdout().is_terminal(),
            stdout: &mut stdout,
            stderr: &mut stderr,
            cwd,
        };
        azp_preflight::app::run(std::env::args_os().collect(), env, &mut io)
    });
    ExitCode::from(result.map(|exit| exit.code()).unwrap_or(3))
}
