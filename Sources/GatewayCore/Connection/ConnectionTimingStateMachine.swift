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
///   idle:        idle deadline; the write-progress deadline instead while the last
///                response still waits in the buffer for a scraper that does not read
///   processing:  none while the scraper takes what is written; the write-progress
///                deadline while it does not (the channel stays unwritable)
/// ```
struct ConnectionTimingStateMachine {
    enum State: Equatable {
        /// The TLS handshake has not finished.
        case handshaking
        /// Reading a request head: its bytes so far.
        case readingHead(bytes: Int)
        /// A request is being answered; `stalled` while the scraper takes no bytes.
        case processing(stalled: Bool)
        /// Between requests on a kept-alive connection; `stalled` while the last
        /// response is still not taken.
        case idle(stalled: Bool)
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
            state = .readingHead(bytes: 0)  // the read-header deadline bounds it now
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
        state = .processing(stalled: false)
        return .cancelDeadline
    }

    /// The channel's writability changed: unwritable means the scraper is not taking
    /// the bytes written to it as fast as they come.
    mutating func writabilityChanged(isWritable: Bool) -> Action {
        switch state {
        case .processing(let stalled) where stalled == isWritable:
            state = .processing(stalled: !isWritable)
            return isWritable ? .cancelDeadline : .arm(.writeProgress)
        case .idle(let stalled) where stalled == isWritable:
            state = .idle(stalled: !isWritable)
            return isWritable ? .arm(.idle) : .arm(.writeProgress)
        default:
            return .none
        }
    }

    mutating func responseCompleted() -> Action {
        guard case .processing(let stalled) = state else { return .none }
        state = .idle(stalled: stalled)
        return stalled ? .none : .arm(.idle)  // a stalled one keeps its write deadline
    }

    mutating func deadlinePassed(_ deadline: Deadline) -> Action {
        switch (state, deadline) {
        case (.handshaking, .handshake):
            state = .closed
            return .close(limit: .handshakeTimeout)
        case (.readingHead, .readHeader):
            state = .closed
            return .close(limit: .readHeaderTimeout)
        case (.processing(stalled: true), .writeProgress), (.idle(stalled: true), .writeProgress):
            state = .closed
            return .close(limit: .writeTimeout)
        case (.idle(stalled: false), .idle):
            state = .closed
            return .close(limit: nil)
        default:
            return .none  // a deadline that no longer applies
        }
    }
}
