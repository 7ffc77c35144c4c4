/// Where a connection is in its request cycle, and which deadline (if any) runs:
/// the decisions of `ConnectionLimitsHandler`, as a value a test drives event by event.
///
/// ```
/// readingHead ─head complete→ processing ─response sent→ idle ─first byte→ readingHead
///   readingHead: read-header deadline (from the connection's start, or from the first
///                byte after idle), head bytes counted against the limit
///   idle:        idle deadline
///   processing:  none here (the scrape's own deadlines are the upstream's)
/// ```
struct ConnectionTimingStateMachine {
    enum State: Equatable {
        /// Reading a request head: its bytes so far.
        case readingHead(bytes: Int)
        /// A request is being answered.
        case processing
        /// Between requests on a kept-alive connection.
        case idle
        case closed
    }

    enum Deadline: Equatable {
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

    private(set) var state = State.readingHead(bytes: 0)
    let maximumHeaderBytes: Int

    init(maximumHeaderBytes: Int) {
        self.maximumHeaderBytes = maximumHeaderBytes
    }

    mutating func connectionStarted() -> Action {
        guard case .readingHead = state else { return .none }
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
