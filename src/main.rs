fn main() {
    std::process::exit(naslake::cli::main());
}
