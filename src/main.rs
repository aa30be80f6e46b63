use std::io::IsTerminal;
use std::process::ExitCode;

use azp_preflight::{app, env::AgentEnv};

fn main() -> ExitCode {
    let env = AgentEnv::from_process();
    // A bug must not print a backtrace into a pipeline log: one line, exit 3, cleaned like
    // every other output (a panic message may quote a path or a server's words).
    let in_pipeline = env.in_pipeline();
    std::panic::set_hook(Box::new(move |info| {
        let line = azp_preflight::output::clean_line(&info.to_string().replace('\n', " "), in_pipeline);
        eprintln!("azp-preflight: internal error: {line}");
    }));
    let outcome = std::panic::catch_unwind(|| {
        let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
        let mut stdout = std::io::stdout().lock();
        let mut stderr = std::io::stderr();
        let is_terminal = std::io::stdout().is_terminal();
        let mut io = app::Io { stdout_is_terminal: is_terminal, stdout: &mut stdout, stderr: &mut stderr, cwd };
        app::run(std::env::args_os().collect(), env.clone(), &mut io)
    });
    match outcome {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(_) => {
            // The step must still end Failed, not silently Succeeded.
            app::report_crash(&env, &mut std::io::stdout());
            ExitCode::from(app::Exit::Internal.code())
        }
    }
}
