//! `mixio serve --build`: runs each component's build command before serving.

use std::process::Command;

use super::App;
use mixio_host::Error;

/// The Rust target guests are built for.
const WASM_TARGET: &str = "wasm32-wasip2";

impl App {
    /// Runs every component's `build` command (each distinct command once, in the manifest's
    /// directory, output to this process's), installing the `wasm32-wasip2` Rust target first
    /// if a command builds for it and it is missing.
    pub fn build(&self) -> Result<(), Error> {
        let mut commands: Vec<(&str, &str)> = Vec::new();
        for c in &self.components {
            if let Some(build) = &c.build
                && !commands.iter().any(|(_, b)| b == build)
            {
                commands.push((&c.name, build));
            }
        }
        if commands.iter().any(|(_, b)| b.contains(WASM_TARGET)) {
            ensure_wasm_target()?;
        }
        for (name, command) in commands {
            tracing::info!(component = name, "building: {command}");
            let status = shell(command).current_dir(&self.root).status().map_err(|e| {
                Error::Config(format!("components.{name}.build: cannot run `{command}`: {e}"))
            })?;
            if !status.success() {
                return Err(Error::Config(format!("components.{name}.build: `{command}` failed ({status})")));
            }
        }
        Ok(())
    }
}

fn shell(command: &str) -> Command {
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(command);
    shell
}

/// Installs the wasm target with rustup when the toolchain lacks it.
fn ensure_wasm_target() -> Result<(), Error> {
    let installed = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .is_some_and(|sysroot| std::path::Path::new(&sysroot).join("lib/rustlib").join(WASM_TARGET).is_dir());
    if installed {
        return Ok(());
    }
    tracing::info!("installing the {WASM_TARGET} target: rustup target add {WASM_TARGET}");
    let status = Command::new("rustup").args(["target", "add", WASM_TARGET]).status().map_err(|e| {
        Error::Config(format!("the {WASM_TARGET} target is missing and rustup cannot run: {e}"))
    })?;
    if !status.success() {
        return Err(Error::Config(format!("`rustup target add {WASM_TARGET}` failed ({status})")));
    }
    Ok(())
}
