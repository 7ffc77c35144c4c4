import Foundation
import GatewayCore
import Testing

/// Every web-config fixture in Tests/Fixtures/webconfig, loaded with freshly made
/// certificates, against the verdict, key and reason in expectations.tsv.
@Suite struct WebConfigFixtureTests {
    struct Expectation: Sendable, CustomTestStringConvertible {
        var file: String
        var accept: Bool
        var key: String
        var reasonWords: String
        var testDescription: String { file }
    }

    static let expectations: [Expectation] = {
        let url = Repository.fixtures.appendingPathComponent("webconfig/expectations.tsv")
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#") else { return nil }
            let columns = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard columns.count >= 5 else { return nil }
            return Expectation(file: columns[0], accept: columns[1] == "accept", key: columns[2], reasonWords: columns[3])
        }
    }()

    /// The fixtures copied next to a `certs/` folder, placeholders replaced by PEM.
    static let folder: URL = {
        let folder = try! makeTemporaryFolder("sg-webconfig")
        let source = Repository.fixtures.appendingPathComponent("webconfig")
        let pki = TestPKI.shared
        try! FileManager.default.copyItem(atPath: pki.folder, toPath: folder.appendingPathComponent("certs").path)
        let tokens = [
            "@@CA_PEM@@": pki.path("ca.crt"), "@@SERVER_CRT_PEM@@": pki.path("server.crt"),
            "@@SERVER_KEY_PEM@@": pki.path("server.key"),
        ]
        for name in try! FileManager.default.contentsOfDirectory(atPath: source.path) where name.hasSuffix(".yml") {
            var lines: [String] = []
            let text = try! String(contentsOf: source.appendingPathComponent(name), encoding: .utf8)
            for line in text.components(separatedBy: "\n") {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if let pemPath = tokens[trimmed] {
                    let indent = String(line.prefix { $0 == " " })
                    let pem = try! String(contentsOfFile: pemPath, encoding: .utf8)
                    lines += pem.split(separator: "\n").map { indent + $0 }
                } else {
                    lines.append(line)
                }
            }
            try! lines.joined(separator: "\n").write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return folder
    }()

    @Test func everyFixtureHasAnExpectation() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Repository.fixtures.appendingPathComponent("webconfig").path)
            .filter { $0.hasSuffix(".yml") }
        #expect(files.count >= 25)
        #expect(Set(files) == Set(Self.expectations.map(\.file)))
    }

    @Test(arguments: expectations)
    func fixture(_ expectation: Expectation) throws {
        let path = Self.folder.appendingPathComponent(expectation.file).path
        if expectation.accept {
            #expect(throws: Never.self) { try WebConfiguration.load(file: path) }
            return
        }
        do {
            _ = try WebConfiguration.load(file: path)
            Issue.record("\(expectation.file) was accepted; expected: \(expectation.key): \(expectation.reasonWords)")
        } catch let error as ConfigError {
            #expect(error.file == path)
            if expectation.key != "-" {
                // `cipher_suites[1]` names `cipher_suites`, more precisely.
                #expect(error.key == expectation.key || error.key.hasPrefix(expectation.key + "["), "\(error)")
            }
            #expect(error.reason.lowercased().contains(expectation.reasonWords.lowercased()), "\(error)")
        }
    }
}
