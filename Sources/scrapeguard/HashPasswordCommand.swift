import ArgumentParser
import GatewayCore
import GatewayTLS

struct HashPasswordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-password",
        abstract: "Read a password on stdin and print its bcrypt hash for basic_auth_users."
    )

    @Option(help: "bcrypt cost (4-31).")
    var cost: Int = 10

    func run() throws {
        guard (4...31).contains(cost) else {
            throw ValidationError("--cost must be between 4 and 31")
        }
        guard var password = readLine(strippingNewline: true) else {
            printError("hash-password: no password on stdin")
            throw ExitCode.failure
        }
        if password.hasSuffix("\r") { password.removeLast() }
        guard !password.isEmpty else {
            printError("hash-password: the password is empty")
            throw ExitCode.failure
        }
        guard !password.utf8.contains(0) else {
            printError("hash-password: the password holds a NUL byte, which bcrypt cannot hash")
            throw ExitCode.failure
        }
        guard password.utf8.count <= BcryptHash.maximumPasswordBytes else {
            printError("hash-password: the password is \(password.utf8.count) bytes; bcrypt reads at most \(BcryptHash.maximumPasswordBytes) (Go's bcrypt refuses longer ones too)")
            throw ExitCode.failure
        }
        guard let hash = BcryptHash.hash(password: password, cost: cost) else {
            printError("hash-password: bcrypt failed")
            throw ExitCode.failure
        }
        print(hash)
    }
}
