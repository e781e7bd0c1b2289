import SessionCore
import SessionCrypto

/// The HTML page at `GET /`: visit count, login form, who is logged in, their sessions with
/// "end this session" buttons, and logout. Plain HTML forms (works without JavaScript), no
/// external assets, one inline style allowed by its hash in a strict Content-Security-Policy.
enum HomePage {
    /// What the page shows.
    struct Model {
        var count: Int64
        var user: String?
        var csrfToken: String?
        var currentHandle: String?
        var sessions: [StoredSession] = []
        var message: String?
        var next: String = "/"

        init(count: Int64, message: String? = nil, next: String = "/") {
            self.count = count
            self.message = message
            self.next = next
        }
    }

    static let style = """
        body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b;line-height:1.5}
        h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem}
        .count{font-size:2.4rem;font-weight:700}
        .user{background:#eef6ee;border:1px solid #9c9;padding:.5rem 1rem;border-radius:.4rem}
        .message{background:#fdecea;border:1px solid #e0a39c;padding:.5rem 1rem;border-radius:.4rem}
        form.inline{display:inline}
        label{display:block;margin-top:.6rem}
        input[type=text],input[type=password]{font-size:1rem;padding:.3rem;width:16rem}
        button{font-size:1rem;margin-top:.8rem;padding:.3rem .9rem}
        table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ccc;padding:.4rem;text-align:left}
        caption{text-align:left;color:#555}
        .visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
        """

    /// `Content-Security-Policy`: nothing but this page's own style and same-origin form posts.
    static let contentSecurityPolicy: String = {
        let hash = Base64.encode(SessionCrypto.sha256(Array(style.utf8)), .standard)
        return "default-src 'none'; style-src 'sha256-\(hash)'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    }()

    static func render(_ model: Model) -> [UInt8] {
        var html = """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Session store</title>
            <style>\(style)</style>
            </head>
            <body>
            <main>
            <h1>Session store</h1>

            """
        if let message = model.message {
            html += "<p class=\"message\" role=\"alert\">\(escape(message))</p>\n"
        }
        html += "<p>Visits in this session: <span class=\"count\" id=\"count\">\(model.count)</span></p>\n"
        if let user = model.user, let token = model.csrfToken {
            html += """
                <p class="user" id="user">Logged in as <strong>\(escape(user))</strong></p>
                <form method="post" action="/logout">
                <input type="hidden" name="csrf_token" value="\(escape(token))">
                <button type="submit" id="logout">Log out</button>
                </form>
                <h2>Your active sessions</h2>
                <table id="sessions">
                <caption>Every browser or device where you are logged in</caption>
                <thead><tr><th scope="col">Started</th><th scope="col">Last seen</th><th scope="col">Browser</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
                <tbody>

                """
            for record in model.sessions {
                let isCurrent = record.handle == model.currentHandle
                html += "<tr><td>\(timestamp(record.createdAt))</td><td>\(timestamp(record.lastSeenAt))</td>"
                html += "<td>\(escape((record.userAgent ?? "unknown").prefix(utf8Bytes: 80)))\(isCurrent ? " <strong>(this browser)</strong>" : "")</td><td>"
                if isCurrent {
                    html += "&nbsp;"
                } else {
                    html += """
                        <form class="inline" method="post" action="/sessions/end">\
                        <input type="hidden" name="csrf_token" value="\(escape(token))">\
                        <input type="hidden" name="handle" value="\(escape(record.handle))">\
                        <button type="submit">End this session</button></form>
                        """
                }
                html += "</td></tr>\n"
            }
            html += "</tbody>\n</table>\n"
        } else {
            if model.next != "/" && model.message == nil {
                // Not the path itself: it is a stranger's choice (a link can carry any text in
                // it), and shown on this origin it would read as the site's own words.
                html += "<p class=\"message\" role=\"status\">Log in to continue to the page you asked for.</p>\n"
            }
            html += """
                <h2>Log in</h2>
                <form method="post" action="/login" id="login">
                <input type="hidden" name="next" value="\(escape(model.next))">
                <label for="user">User</label>
                <input type="text" id="user" name="user" autocomplete="username" required>
                <label for="password">Password</label>
                <input type="password" id="password" name="password" autocomplete="current-password" required>
                <button type="submit">Log in</button>
                </form>

                """
        }
        html += "</main>\n</body>\n</html>\n"
        return Array(html.utf8)
    }

    /// HTML text and attribute escaping, scalar by scalar: compared as Swift `Character`s, a
    /// `<` or `"` followed by a combining mark (one grapheme, not equal to "<") went out
    /// unescaped (found by an attack pass).
    static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// `2026-11-25 18:40 UTC` from seconds since 1970 (no Foundation).
    static func timestamp(_ seconds: Int64) -> String {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondsOfDay = seconds - days * 86400
        // Civil-from-days (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(two(month))-\(two(day)) \(two(secondsOfDay / 3600)):\(two(secondsOfDay % 3600 / 60)) UTC"
    }

    /// A same-site path to return to after login, or `/`: never another origin (no open redirect).
    static func safeNext(_ candidate: String?) -> String {
        guard let candidate, candidate.hasPrefix("/"), !candidate.hasPrefix("//"), !candidate.hasPrefix("/\\"),
              candidate.utf8.count <= 512, candidate.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else { return "/" }
        return candidate
    }
}
