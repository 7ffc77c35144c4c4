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
///   processing:  none of its own
///   idle:        idle deadline
///   any of readingHead, processing, idle while the channel is unwritable (the
///                scraper takes none of what is written): the write-progress
///                deadline instead, from the moment it became unwritable; nothing
///                the client sends replaces it, only taking bytes again does
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
        case writeProgress
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
    /// Whether the scraper takes what is written (the channel's writability).
    private(set) var writable = true
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
        return arm(.readHeader)
    }

    /// Plaintext bytes arrived.
    mutating func bytesReceived(_ count: Int) -> Action {
        var action = Action.none
        switch state {
        case .idle:
            state = .readingHead(bytes: 0)
            action = arm(.readHeader)
        case .processing, .closed, .handshaking:
            // Pipelined requests wait in the HTTP pipeline; after a 431 nothing is
            // read (the handler drops it); plaintext comes only after the handshake.
            return .none
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

    /// A whole head reached the HTTP handler: from a head being read, or, pipelined,
    /// handed over the moment the previous response ended.
    mutating func requestHeadReceived() -> Action {
        switch state {
        case .readingHead, .idle:
            state = .processing
            return writable ? .cancelDeadline : .none
        default:
            return .none
        }
    }

    /// The channel's writability changed: unwritable means the scraper is not taking
    /// the bytes written to it. While it lasts, the write-progress deadline runs, and
    /// nothing the client sends (a new request, say) replaces it; when it ends, the
    /// state's own deadline applies again.
    mutating func writabilityChanged(isWritable: Bool) -> Action {
        guard isWritable != writable else { return .none }
        writable = isWritable
        switch state {
        case .handshaking, .closed:
            return .none
        case .readingHead, .processing, .idle:
            return isWritable ? deadlineOfState : .arm(.writeProgress)
        }
    }

    mutating func responseCompleted() -> Action {
        guard case .processing = state else { return .none }
        state = .idle
        return arm(.idle)
    }

    mutating func deadlinePassed(_ deadline: Deadline) -> Action {
        switch (state, deadline) {
        case (.handshaking, .handshake):
            state = .closed
            return .close(limit: .handshakeTimeout)
        case (.readingHead, .writeProgress) where !writable,
             (.processing, .writeProgress) where !writable,
             (.idle, .writeProgress) where !writable:
            state = .closed
            return .close(limit: .writeTimeout)
        case (.readingHead, .readHeader) where writable:
            state = .closed
            return .close(limit: .readHeaderTimeout)
        case (.idle, .idle) where writable:
            state = .closed
            return .close(limit: nil)
        default:
            return .none  // a deadline that no longer applies
        }
    }

    /// Arms a state's deadline, unless a stall's write-progress deadline is running:
    /// that one stays until the scraper takes bytes again.
    private func arm(_ deadline: Deadline) -> Action {
        writable ? .arm(deadline) : .none
    }

    /// The deadline the current state has of its own.
    private var deadlineOfState: Action {
        switch state {
        case .handshaking: return .arm(.handshake)
        case .readingHead: return .arm(.readHeader)
        case .processing: return .cancelDeadline
        case .idle: return .arm(.idle)
        case .closed: return .none
        }
    }
}
