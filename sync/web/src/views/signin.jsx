import { useState } from "preact/hooks";

export function SignIn({ message, onToken }) {
  const [token, setToken] = useState("");
  return (
    <main class="signin">
      <h1>castroom</h1>
      <p class="signin-message" role="alert">{message}</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (token.trim()) onToken(token.trim());
        }}
      >
        <label>
          Token <input type="password" value={token} onInput={(e) => setToken(e.currentTarget.value)} autocomplete="off" />
        </label>
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}
