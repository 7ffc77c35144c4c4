/// Where a connection is in its request cycle, and which deadline (if any) runs:
/// the decisions of `ConnectionLimitsHandler`, as a value a test drives event by event.
///
/// ```
/// handshaking ─handshake done→ readingHead ─head complete→ processing
///                                  ↑                          │ response sent
///                                  └──── first byte ──── idle ←┘
///   handshaking: handshake deadline, from the connection's start
///   readingHead: read-header deadline (from the handshake's end, or from the first
///                byte after idle), head bytes counted against the limit
///   idle:        idle deadline
///   processing:  none here (the scrape's own deadlines are the upstream's)
/// ```
struct ConnectionTimingStateMachine {
    enum State: Equatable {
        /// The TLS handshake has not finished.
        case handshaking
        /// Reading a request head: its bytes so far.
        case readingHead(bytes: Int)
        /// A request is being answered.
        case processing
        /// Between requests on a kept-alive connection.
        case idle
        case closed
    }

    enum Deadline: Equatable {
        case handshake
        case readHeader
        case idle
    }

    enum Action: Equatable {
        case none
        /// Start this deadline, replacing any other.
        case arm(Deadline)
        case cancelDeadline
        /// Answer 431 and close: the head is over the limit.
        case refuseOversizedHead
        /// Close; count the limit that closed it (nil: an idle connection's ordinary end).
        case close(limit: ConnectionLimit?)
    }

    private(set) var state: State
    let maximumHeaderBytes: Int

    /// - Parameter awaitsHandshake: whether the connection starts with a TLS handshake
    ///   (the gateway's listener), or reads a request at once (plain HTTP).
    init(maximumHeaderBytes: Int, awaitsHandshake: Bool = true) {
        self.maximumHeaderBytes = maximumHeaderBytes
        self.state = awaitsHandshake ? .handshaking : .readingHead(bytes: 0)
    }

    mutating func connectionStarted() -> Action {
        switch state {
        case .handshaking: return .arm(.handshake)
        case .readingHead: return .arm(.readHeader)
        case .processing, .idle, .closed: return .none
        }
    }

    mutating func handshakeCompleted() -> Action {
        guard case .handshaking = state else { return .none }
        state = .readingHead(bytes: 0)
        return .arm(.readHeader)
    }

    /// Plaintext bytes arrived.
    mutating func bytesReceived(_ count: Int) -> Action {
        var action = Action.none
        switch state {
        case .idle:
            state = .readingHead(bytes: 0)
            action = .arm(.readHeader)
        case .processing, .closed:
            return .none  // pipelined requests wait in the HTTP pipeline
        case .handshaking:
            return .none  // plaintext comes only after the handshake
        case .readingHead:
            break
        }
        guard case .readingHead(let bytes) = state else { return action }
        guard bytes + count <= maximumHeaderBytes else {
            state = .closed
            return .refuseOversizedHead
        }
        state = .readingHead(bytes: bytes + count)
        return action
    }

    mutating func requestHeadReceived() -> Action {
        guard case .readingHead = state else { return .none }
        state = .processing
        return .cancelDeadline
    }

    mutating func responseCompleted() -> Action {
        guard case .processing = state else { return .none }
        state = .idle
        return .arm(.idle)
    }

    mutating func deadlinePassed(_ deadline: Deadline) -> Action {
        switch (state, deadline) {
        case (.handshaking, .handshake):
            state = .closed
            return .close(limit: .handshakeTimeout)
        case (.readingHead, .readHeader):
            state = .closed
            return .close(limit: .readHeaderTimeout)
        case (.idle, .idle):
            state = .closed
            return .close(limit: nil)
        default:
            return .none  // a deadline that no longer applies
        }
    }
}
