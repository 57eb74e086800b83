//! Project automation (`cargo xtask <task>`). No tasks exist yet; this placeholder keeps the
//! workspace member list valid until the real tasks land.

fn main() {
    eprintln!("usage: cargo xtask <task>\n\nno tasks are defined yet");
    std::process::exit(2);
}
